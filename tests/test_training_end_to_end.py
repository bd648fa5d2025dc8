"""CI's end-to-end check: `binpick train` -> `binpick export` -> `binpick eval` ->
`binpick model-card` on tiny Mikado sets (training and a held-out test set with another seed)."""

from __future__ import annotations

import json

from training_scenes import binpick, mikado_scenes


def test_train_export_eval_card(tmp_path_factory, tmp_path):
    base = tmp_path_factory.getbasetemp()
    train_set = mikado_scenes(base)
    test_set = mikado_scenes(base, "mikado64_test", count=2, seed=99)
    run, model, out = tmp_path / "run", tmp_path / "models" / "f25.onnx", tmp_path / "eval"
    binpick(
        "train", "--data", str(train_set), "--out", str(run), "--width", "F25", "--crop", "32",
        "--batch-size", "2", "--iterations", "2", "--workers", "0", "--no-progress",
    )  # fmt: skip
    ckpt = str(run / "best.pt")
    binpick("export", "--checkpoint", ckpt, "--onnx", str(model), "--height", "64", "--width", "64")
    printed = binpick(
        "eval", "--model", str(model), "--data", str(test_set), "--out", str(out), "--no-progress"
    )  # fmt: skip
    assert "boundaries" in printed.stdout and "occlusions" in printed.stdout
    result = json.loads((out / "eval.json").read_text())
    for key in ("boundaries", "occlusions"):
        scores = result[key]
        assert 0.0 <= scores["ap"] <= 1.0 and 0.0 <= scores["ods"] <= 1.0
        assert len(scores["precision"]) == 99 and scores["images"] == 2
    assert result["model"]["backend"] == "onnxruntime" and result["dataset"]["frames"] == 2
    assert (out / "pr.png").stat().st_size > 10_000
    card = tmp_path / "models" / "README.md"
    binpick("model-card", "--model", str(model), "--eval", str(out / "eval.json"), "--out", str(card))
    text = card.read_text()
    assert "bicameral F25" in text and "thesis F25 ODS" in text and "| boundaries |" in text
    assert f"{result['boundaries']['ods']:.3f}" in text


def test_eval_reports_bad_inputs_in_one_line(tmp_path):
    done = binpick_failing("eval", "--model", str(tmp_path / "missing.onnx"), "--data", str(tmp_path))
    assert done.returncode == 2 and "missing.onnx" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "m.pt").write_bytes(b"not a checkpoint")
    done = binpick_failing("eval", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path))
    assert done.returncode == 2 and "m.pt" in done.stderr and "Traceback" not in done.stderr


def test_train_reports_bad_inputs_in_one_line(tmp_path):
    run = str(tmp_path / "run")
    done = binpick_failing("train", "--data", str(tmp_path), "--out", run, "--iterations", "1")
    assert done.returncode == 2 and "not a Mikado dataset" in done.stderr and "Traceback" not in done.stderr
    done = binpick_failing("train", "--data", str(tmp_path), "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and "--time-budget" in done.stderr


def binpick_failing(*args: str):
    import os
    import subprocess
    import sys

    from training_scenes import REPO

    return subprocess.run(
        [sys.executable, "-m", "edge", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
