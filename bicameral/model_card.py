"""Model card for an exported model: what it is, how it was made, how it scores.

Everything comes from the model's own provenance (written at training, carried into the ONNX
metadata by `binpick export`) and from a `binpick eval` JSON, so the card cannot drift from the
model it describes. Scores are set next to the thesis's Table 5.5 for the same width.
"""

from __future__ import annotations

from pathlib import Path

from bicameral.evaluation.evaluate import THESIS_TABLE_5_5
from edge.atomic_file import write_atomically


def model_facts(path: str | Path) -> dict:
    """Variant, width, input and provenance of an .onnx (metadata) or a checkpoint."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from binpick_core.model_file import read_model_info

        info = read_model_info(path)
        size = "dynamic" if info.dynamic else f"{info.input_width}x{info.input_height}"
        return {
            "file": path.name,
            "variant": info.variant,
            "width": info.width,
            "encoder": info.encoder,
            "input": info.input_kind,
            "input_size": size,
            "model_id": info.model_id,
            "provenance": info.provenance,
            "denormals_flushed": info.denormals_flushed,
        }
    from bicameral.checkpoint import read_checkpoint

    data = read_checkpoint(path)
    channels = data["config"]["in_channels"]
    return {
        "file": path.name,
        "variant": data["config"]["variant"],
        "width": data["config"]["width"],
        "encoder": data["config"].get("encoder", "vgg16"),
        "input": {3: "rgb", 1: "depth", 4: "rgbd"}[channels],
        "input_size": "any (multiple of 16 after padding)",
        "model_id": None,
        "provenance": data["provenance"],
    }


def eval_mismatch(model: str | Path, facts: dict, evaluation: dict, same_bytes: bool) -> str:
    """How the model a `binpick eval` JSON scored differs from `model` ("" when it does not, or when
    the JSON records no model): a card would otherwise show another model's scores under this
    one's name, input and model id. Compared: input, variant, width, model id, and the training
    run (its provenance's iterations and date). `same_bytes` (--eval): also the file's SHA-256
    where the eval recorded one, else its file name; --eval-before is of the same model before
    a re-export flushed its denormal weights, so only its bytes and path may differ."""
    recorded = evaluation.get("model")
    if not isinstance(recorded, dict):
        return ""
    ours = {**facts, **{k: facts.get("provenance", {}).get(k) for k in ("iterations", "date")}}
    theirs = {**recorded, **{k: (recorded.get("provenance") or {}).get(k) for k in ("iterations", "date")}}
    labels = {"input": "input", "variant": "variant", "width": "width", "model_id": "model id",
              "iterations": "trained iterations", "date": "trained"}  # fmt: skip
    differences = [
        f"{label} {theirs[key]} vs {ours[key]}"
        for key, label in labels.items()
        if theirs.get(key) is not None and ours.get(key) is not None and theirs[key] != ours[key]
    ]
    if same_bytes and not differences:
        if recorded.get("sha256"):
            from binpick_core.model_file import file_sha256

            digest = file_sha256(model)
            if recorded["sha256"] != digest:
                differences.append(f"sha256 {recorded['sha256'][:12]}... vs {digest[:12]}...")
        elif recorded.get("model") and Path(recorded["model"]).name != Path(model).name:
            differences.append(f"file {Path(recorded['model']).name} vs {Path(model).name}")
    return "; ".join(differences)


def width_name(width: float) -> str:
    """Thesis naming: 0.25 -> "F25" (0.125 -> "F12.5")."""
    return f"F{100 * float(width):g}"


def _size(size: object) -> str:
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
        return f"{size[0]}x{size[1]} px"
    return "unknown size"


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = float(seconds)
    return f"{seconds / 3600:.2f} h ({seconds:.0f} s)" if seconds >= 600 else f"{seconds:.0f} s"


def denormal_lines(facts: dict, evaluation: dict | None, before: dict | None) -> list[str]:
    """The card's denormal section: how many weights export flushed to zero and, given the eval of
    the file before flushing, the score change (it must not drop)."""
    flushed = facts.get("denormals_flushed")
    if flushed is None:
        return []
    text = (
        f"`binpick export` set {flushed} denormal float32 weights to zero (`binpick.denormals_flushed`;"
        " they cost up to 4x inference time on x86 CPUs)."
    )
    if before is None or evaluation is None:
        return ["## Denormal weights", "", text, ""]
    lines = [
        "## Denormal weights",
        "",
        text + " Scores on the same frames before and after:",
        "",
        "| | ODS before | ODS after | AP before | AP after |",
        "|---|---|---|---|---|",
    ]
    for key in ("boundaries", "occlusions"):
        b, a = before[key], evaluation[key]
        lines.append(f"| {key} | {b['ods']:.4f} | {a['ods']:.4f} | {b['ap']:.4f} | {a['ap']:.4f} |")
    return [*lines, ""]


def _initialisation(p: dict) -> str:
    """Where the weights started: a checkpoint (fine-tuning, warm start), pretrained encoder
    weights, or nothing."""
    if p.get("finetuned_from"):
        before = p.get("pretraining", {})
        detail = f"{before.get('iterations', '?')} iterations, input {before.get('input', '?')}"
        frozen = p.get("frozen_blocks", 0)
        return f"from {p['finetuned_from']} ({detail}); {frozen} encoder blocks frozen"
    return p.get("encoder_weights") or "from scratch (no pretrained weights)"


def render_model_card(
    facts: dict, evaluation: dict | None, notes: list[str] | None = None, before: dict | None = None
) -> str:
    """The card as Markdown; `before` is the eval of the model before its denormals were flushed."""
    p = facts.get("provenance", {})
    name = width_name(facts["width"])
    lines = [
        f"# {facts['file']}: {facts['variant']} {name}",
        "",
        "Instance boundaries and occlusions (thesis Chapter 4) for the binpick appliance.",
        "",
        "| | |",
        "|---|---|",
        f"| Variant | {facts['variant']} (encoder {facts['encoder']}) |",
        f"| Width | {name} ({facts['width']} of the thesis's filters) |",
        f"| Input | {facts['input']}, export size {facts['input_size']} |",
        f"| Model id | {facts['model_id']} |",
        f"| Training data | {p.get('preset', 'unknown')}, {p.get('dataset_scenes', '?')} scenes of "
        f"{_size(p.get('image_size'))} (seed {p.get('dataset_seed', '?')}), "
        f"{p.get('validation_scenes', '?')} more held out for validation |",
        f"| Crops, batch | {p.get('crop', '?')}² crops, batch {p.get('batch_size', '?')} |",
        f"| Optimiser | {p.get('optimizer', '?')} |",
        f"| Iterations | {p.get('iterations', '?')} ({p.get('epochs', '?')} epochs) |",
        f"| Hardware | {p.get('hardware', 'unknown')}, precision {p.get('amp', '?')} |",
        f"| Training time | {_hours(p.get('training_seconds'))} |",
        f"| Initialisation | {_initialisation(p)} |",
        f"| Code | git {p.get('git_commit', 'unknown')}, trained {p.get('date', '?')} |",
        "",
    ]
    if evaluation is not None:
        ds = evaluation.get("dataset", {})
        proto = evaluation.get("protocol", {})
        thesis = THESIS_TABLE_5_5.get(name)
        lines += [
            "## Scores (`binpick eval`)",
            "",
            f"Held-out test set: {ds.get('preset', '?')}, {ds.get('frames', '?')} frames, "
            f"seed {ds.get('seed', '?')} (`{ds.get('path', '?')}`); 99 thresholds, no NMS, "
            f"no thinning, tolerance {proto.get('tolerance')}.",
            "",
            "| | ODS | OIS | AP | AP60 |" + (f" thesis {name} ODS | thesis {name} AP |" if thesis else ""),
            "|---|---|---|---|---|" + ("---|---|" if thesis else ""),
        ]
        for key in ("boundaries", "occlusions"):
            s = evaluation[key]
            row = f"| {key} | {s['ods']:.3f} | {s['ois']:.3f} | {s['ap']:.3f} | {s['ap60']:.3f} |"
            if thesis:
                row += f" {thesis[key]['ods']:.3f} | {thesis[key]['ap']:.3f} |"
            lines.append(row)
        inst = evaluation.get("instances", {})
        lines.append("")
        if "best_candidate_success" in inst:
            lines.append(
                f"Instance level ({inst['frames']} frames, appliance ranking): the best candidate "
                "matches an unoccluded instance (IoU ≥ 0.5, occlusion < 5 %) in "
                f"{100 * inst['best_candidate_success']:.1f} % "
                f"of frames; mean candidate IoU {inst['mean_candidate_iou']:.3f}; "
                f"{inst['mean_candidates_per_frame']:.1f} candidates per frame."
            )
        else:
            lines.append(f"Instance level: {inst.get('note', 'not evaluated')}.")
        if thesis:
            lines += [
                "",
                f"The thesis's figures (Table 5.5) are for {name} trained on Mikado with an "
                "ImageNet-pretrained encoder and cross-validated; compare with care when the data, "
                "training time or hardware differ.",
            ]
        lines.append("")
    lines += denormal_lines(facts, evaluation, before)
    notes = list(notes or [])
    if "CPU" in str(p.get("hardware", "")):
        notes.append(
            "Trained on a CPU in a short session, far below the thesis's training: retrain on a GPU "
            "with scripts/make_bundled_model.sh (docs/training.md)."
        )
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def write_model_card(path: str | Path, text: str) -> None:
    write_atomically(path, text.encode())
