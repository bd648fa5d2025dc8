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


def _tiny_checkpoint(path, in_channels: int, provenance: dict):
    import torch

    from bicameral.checkpoint import save_checkpoint
    from bicameral.data import preprocess_record
    from bicameral.networks import build_network

    torch.manual_seed(0)
    model = build_network("bicameral", 0.0625, in_channels=in_channels)
    kind = {3: "rgb", 4: "rgbd"}[in_channels]
    statistics = () if kind == "rgb" else (0.0, 0.01)
    return save_checkpoint(path, model, model.config, preprocess_record(kind, *statistics), provenance)


def _eval_of(checkpoint, tmp_path, name="eval.json", **changes):
    from bicameral.evaluation.predictors import CheckpointPredictor

    scores = {"ods": 0.5, "ois": 0.5, "ap": 0.5, "ap60": 0.4}
    description = {**CheckpointPredictor(checkpoint, "cpu").description, **changes}
    path = tmp_path / name
    path.write_text(json.dumps({"model": description, "boundaries": scores, "occlusions": scores}))
    return path


def test_a_model_card_refuses_the_eval_of_another_model(tmp_path, capsys):
    """`model-card --model rgbd.onnx --eval` of rgb.onnx's eval wrote a card saying input rgbd,
    model id 8, with the RGB model's scores: the eval's recorded model must be --model."""
    trained = {"iterations": 10, "date": "2026-12-01T00:00:00+00:00"}
    rgb = _tiny_checkpoint(tmp_path / "rgb.pt", 3, trained)
    rgbd = _tiny_checkpoint(tmp_path / "rgbd.pt", 4, {"iterations": 31, "date": "2026-12-02T00:00:00+00:00"})
    of_rgb = _eval_of(rgb, tmp_path)
    card = ["model-card", "--out", str(tmp_path / "card.md")]
    assert binpick([*card, "--model", str(rgbd), "--eval", str(of_rgb)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"binpick model-card: error: --eval {of_rgb}: scores {rgb}, not --model {rgbd} ")
    assert "input rgb vs rgbd; trained iterations 10 vs 31;" in err and err.count("\n") == 1
    assert not (tmp_path / "card.md").exists()
    assert binpick([*card, "--model", str(rgb), "--eval", str(of_rgb)]) == 0
    other_bytes = _eval_of(rgb, tmp_path, "bytes.json", sha256="0" * 64)
    assert binpick([*card, "--model", str(rgb), "--eval", str(other_bytes)]) == 2
    assert "(sha256 000000000000... vs " in capsys.readouterr().err
    # An eval written before the hash was recorded: the file name; --eval-before (the same model
    # before a re-export flushed its denormals) may be of other bytes and another path.
    older = _eval_of(rgb, tmp_path, "older.json", sha256=None, model_id=None, model="run/best.pt")
    assert binpick([*card, "--model", str(rgb), "--eval", str(older)]) == 2
    assert "(file best.pt vs rgb.pt, eval's vs the model's)" in capsys.readouterr().err
    assert (
        binpick([*card, "--model", str(rgb), "--eval", str(of_rgb), "--eval-before", str(other_bytes)]) == 0
    )
    assert binpick([*card, "--model", str(rgb), "--eval", str(of_rgb), "--eval-before", str(older)]) == 0
    assert binpick([*card, "--model", str(rgbd), "--eval-before", str(of_rgb)]) == 2
    assert "error: --eval-before " in capsys.readouterr().err


def test_the_model_id_an_eval_recorded_must_be_the_models():
    from bicameral.model_card import eval_mismatch

    facts = {"input": "rgb", "variant": "bicameral", "width": 0.25, "model_id": 8, "provenance": {}}
    recorded = {"model": {"input": "rgb", "variant": "bicameral", "width": 0.25, "model_id": 7}}
    assert eval_mismatch("m.onnx", facts, recorded, same_bytes=False) == "model id 7 vs 8"
    assert eval_mismatch("m.onnx", facts, {}, same_bytes=True) == ""  # no model recorded: not checked


def test_a_model_folder_is_named_as_a_folder(tmp_path, capsys):
    assert (
        binpick(["eval", "--model", str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path / "ev")])
        == 2
    )
    assert f"--model {tmp_path}: is a folder, expected a model file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("model.pt", ["--backend", "openvino"], "--backend openvino: runs .onnx models only"),
        ("model.pt", ["--precision", "bf16"], "--precision bf16: only with --backend openvino"),
        ("model.onnx", ["--precision", "auto"], "--precision auto: only with --backend openvino"),
    ],
)
def test_backend_flags_that_would_be_ignored_are_refused(tmp_path, capsys, name, extra, message):
    """eval.json records what ran, but a user who asked for OpenVINO and got PyTorch or ONNX
    Runtime would compare figures of another backend than the one named on the command line."""
    model = tmp_path / name
    model.write_bytes(b"not read: the flags are checked first")
    code = binpick(
        ["eval", "--model", str(model), "--data", str(tmp_path), "--out", str(tmp_path / "ev"), *extra]
    )
    assert code == 2 and message in capsys.readouterr().err


def test_a_damaged_dataset_json_is_refused_before_any_frame_is_scored(tmp_path, monkeypatch):
    """evaluate() read dataset.json only after every frame had been inferred and scored (minutes
    on a real set), so a damaged file threw that work away; it is read first now, as quantize does
    (list_scenes and read_scene stood in for: no frame may be read)."""
    from bicameral.data import DatasetError
    from bicameral.evaluation import evaluate as engine

    (tmp_path / "dataset.json").write_text("[1, 2]")
    monkeypatch.setattr(engine, "list_scenes", lambda data: [tmp_path / "scene_000000"])

    def read_scene(path):
        raise AssertionError(f"{path} was read before dataset.json was checked")

    monkeypatch.setattr(engine, "read_scene", read_scene)
    with pytest.raises(DatasetError, match=r"dataset.json: expected a JSON object, got list"):
        engine.evaluate(object(), tmp_path, instances="off", progress=False)
