"""`binpick eval` and `binpick model-card` refuse bad arguments in one line, before any scoring."""

from __future__ import annotations

import json

import pytest

from binpick_core.errors import CommandError
from edge.cli import main as binpick


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--limit", "0"], "--limit 0: expected at least 1 frame"),
        (["--limit", "-1"], "--limit -1: expected at least 1 frame"),
        (["--tolerance", "nan"], "--tolerance 'nan': expected pixel, bsds or a finite radius"),
        (["--tolerance", "inf"], "--tolerance 'inf': expected pixel, bsds or a finite radius"),
    ],
)
def test_bad_numbers_are_refused(tmp_path, capsys, extra, message):
    model = tmp_path / "model.pt"
    model.write_bytes(b"not read: the arguments are checked first")
    code = binpick(
        ["eval", "--model", str(model), "--data", str(tmp_path), "--out", str(tmp_path / "ev"), *extra]
    )
    assert code == 2 and message in capsys.readouterr().err


def test_an_out_that_cannot_take_the_results_is_refused_before_scoring(tmp_path, capsys):
    model = tmp_path / "model.pt"
    model.write_bytes(b"not read: --out is checked first")
    afile = tmp_path / "afile"
    afile.write_text("keep")
    (tmp_path / "ev" / "eval.json").mkdir(parents=True)
    cases = [
        (afile, f"--out {afile}: is a file, expected a folder"),
        (afile / "sub", f"--out {afile / 'sub'}: {afile} is a file, expected a folder"),
        (tmp_path / "ev", f"{tmp_path / 'ev' / 'eval.json'} is a folder, expected a file"),
    ]
    for out, message in cases:
        code = binpick(["eval", "--model", str(model), "--data", str(tmp_path / "none"), "--out", str(out)])
        assert code == 2 and message in capsys.readouterr().err, out
    assert afile.read_text() == "keep"


def test_an_unknown_device_names_the_option():
    from bicameral.evaluation.predictors import CheckpointPredictor

    with pytest.raises(ValueError, match=r"--device 'foo': expected auto, cpu, cuda or cuda:N"):
        CheckpointPredictor("/nonexistent.pt", "foo")


def test_model_card_eval_sections_must_be_objects_of_numbers(tmp_path):
    from bicameral.commands.model_card import read_eval

    good = {key: {"ods": 0.5, "ois": 0.5, "ap": 0.5, "ap60": 0.4} for key in ("boundaries", "occlusions")}
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(good))
    assert read_eval("--eval", str(path)) == good
    cases = [
        ([good], "expected a JSON object"),
        ({**good, "boundaries": [0.5]}, "key 'boundaries' is list, expected an object"),
        ({**good, "instances": "none"}, "key 'instances' is str, expected an object"),
        (
            {**good, "occlusions": {**good["occlusions"], "ap": "x"}},
            "key 'occlusions.ap' is 'x', expected a number",
        ),
        ({**good, "occlusions": {"ods": 0.5}}, "key 'occlusions.ois' is None, expected a number"),
    ]
    for evaluation, message in cases:
        path.write_text(json.dumps(evaluation))
        with pytest.raises(CommandError, match=f"--eval {path}: {message}"):
            read_eval("--eval", str(path))
