"""`binpick model-card`: write a model's README from its provenance and a `binpick eval` JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from binpick_core.errors import CommandError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model.onnx (or a checkpoint)")
    parser.add_argument("--eval", dest="eval_json", help="eval.json written by binpick eval")
    parser.add_argument(
        "--eval-before",
        help="eval.json of the model before its denormal weights were flushed (the card shows both)",
    )
    parser.add_argument("--out", default="models/README.md", help="card to write (models/README.md)")
    parser.add_argument("--note", action="append", default=[], help="a Notes line (repeatable)")


def main(args: argparse.Namespace) -> int:
    from bicameral.checkpoint import CheckpointError
    from bicameral.model_card import model_facts, render_model_card, write_model_card
    from binpick_core.model_file import ModelFileError

    try:
        facts = model_facts(args.model)
    except (ModelFileError, CheckpointError) as exc:
        raise CommandError(str(exc)) from None
    evaluation = read_eval("--eval", args.eval_json)
    before = read_eval("--eval-before", args.eval_before)
    check_same_model(args.model, facts, "--eval", args.eval_json, evaluation)
    check_same_model(args.model, facts, "--eval-before", args.eval_before, before)
    write_model_card(args.out, render_model_card(facts, evaluation, args.note, before))
    print(f"wrote {args.out}")
    return 0


def check_same_model(model: str, facts: dict, option: str, path: str | None, evaluation: dict | None) -> None:
    """Refuse an eval JSON of another model than --model (bicameral.model_card.eval_mismatch)."""
    from bicameral.model_card import eval_mismatch

    if evaluation is None:
        return
    differences = eval_mismatch(model, facts, evaluation, same_bytes=option == "--eval")
    if differences:
        scored = evaluation["model"].get("model", "another model")
        raise CommandError(
            f"{option} {path}: scores {scored}, not --model {model} ({differences}, eval's vs the "
            f"model's); give the eval.json of binpick eval --model {model}"
        )


def read_eval(option: str, path: str | None) -> dict | None:
    """A `binpick eval` JSON, or one clear error naming the option and the file."""
    if not path:
        return None
    try:
        evaluation = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CommandError(f"{option} {path}: {exc}") from None
    if not isinstance(evaluation, dict):
        raise CommandError(f"{option} {path}: expected a JSON object (not a binpick eval JSON)")
    for key in ("boundaries", "occlusions"):
        if key not in evaluation:
            raise CommandError(f"{option} {path}: key '{key}' missing (not a binpick eval JSON)")
    # The card reads these fields directly: a malformed section would stop it with a TypeError.
    for key in ("boundaries", "occlusions", "instances", "dataset", "protocol"):
        section = evaluation.get(key, {})
        if not isinstance(section, dict):
            kind = type(section).__name__
            raise CommandError(f"{option} {path}: key '{key}' is {kind}, expected an object")
    for key in ("boundaries", "occlusions"):
        for score in ("ods", "ois", "ap", "ap60"):
            value = evaluation[key].get(score)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CommandError(f"{option} {path}: key '{key}.{score}' is {value!r}, expected a number")
    return evaluation
