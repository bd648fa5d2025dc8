"""`binpick simcell` end to end as subprocesses: the appliance's own cycle over Modbus TCP, a
baseline, the report, the GIF, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from appliance_helpers import tiny_model

pytest.importorskip("mujoco")
pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[1]


def binpick(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """An untrained F25 and an appliance configuration that makes its meaningless maps one candidate."""
    tmp = tmp_path_factory.mktemp("simcell_model")
    model = tiny_model(tmp, 64, 64)
    text = (ROOT / "firmware_config" / "embedded.toml").read_text()
    text = text.replace("alpha = 0.1", "alpha = 0.999").replace("beta = 0.1", "beta = 0.5")
    text = text.replace("min_area = 0.0005", "min_area = 16").replace("max_area = 0.5", "max_area = 1e9")
    text = text.replace(
        'registers = "registers.toml"', f'registers = "{ROOT / "firmware_config" / "registers.toml"}"'
    )
    config = tmp / "untrained.toml"
    config.write_text(text)
    return model, config


def test_run_ours_over_modbus_and_a_baseline_then_report(tmp_path, untrained):
    model, config = untrained
    out = tmp_path / "out"
    common = [
        "--family",
        "rigid_box",
        "--sequences",
        "1",
        "--size",
        "64",
        "--instances",
        "3",
        "--out",
        str(out),
    ]
    proc = binpick("simcell", "run", *common, "--method", "ours,ours_cue,planar", "--plc", "--model",
                   str(model), "--config", str(config), "--threads", "1", "--max-area", "config")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Stereo depth is every method's default depth: the depth methods' records say so.
    for method in ("ours", "ours_cue", "planar_stereo"):
        records = [json.loads(line) for line in (out / f"records_{method}.jsonl").read_text().splitlines()]
        assert 1 <= len(records) <= 5  # budget: 1.5 x 3 instances
        for r in records:
            assert r["method"] == method and r["family"] == "rigid_box"
            assert r["q1"] in ("yes", "no", "more")
        if method == "ours":
            # The grasp went through the calibration file and the registers: robot millimetres.
            grasped = [r for r in records if "robot_mm" in r]
            assert grasped and all(r["vision_ms"] > 0 and len(r["robot_mm"]) == 3 for r in grasped)
            # the seal is judged where the cup came down too, so the report splits press from contact
            assert all(isinstance(r["seal_on_contact"], str) for r in grasped)
            # the rule that placed each grasp, this cycle's (the cycle keeps it after publishing)
            rules = ("suction", "suction_edge", "raised", "centroid", "inscribed")
            assert all(r["grasp_method"] in rules for r in grasped), [r["grasp_method"] for r in grasped]
    info = json.loads((out / "run.json").read_text())
    assert info["plc"] is True and info["held_out"]["textures"] is True
    report = binpick("simcell", "report", "--out", str(out))
    assert report.returncode == 0, report.stderr
    table = (out / "report.md").read_text()
    assert "| rigid_box | ours (bicameral + ranking) |" in table
    assert "| overall | planar region (industrial), stereo depth |" in table
    assert "| overall | ours + depth cue, stereo depth |" in table
    assert "| moved under the press |" in table and "stage not recorded" not in table
    assert (out / "report.png").stat().st_size > 1000


def test_report_pools_runs_of_several_seeds(tmp_path):
    """`report --add`: runs of other seeds (or machines, scripts/simcell_parallel.sh) pooled in
    one table; their sequences share names but not piles, and NS counts piles."""
    counts = {}
    for seed in (1, 2):
        out = tmp_path / f"seed{seed}"
        proc = binpick("simcell", "run", "--family", "square_sachet", "--sequences", "1", "--size", "64",
                       "--instances", "3", "--method", "random", "--seed", str(seed),
                       "--out", str(out))  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        counts[seed] = len((out / "records_random.jsonl").read_text().splitlines())
    report = binpick("simcell", "report", "--out", str(tmp_path / "seed1"), "--add", str(tmp_path / "seed2"))
    assert report.returncode == 0, report.stderr
    row = next(line for line in (tmp_path / "seed1" / "report.md").read_text().splitlines()
               if line.startswith("| overall | random point |"))  # fmt: skip
    cells = [c.strip() for c in row.split("|")]
    assert int(cells[3]) == counts[1] + counts[2] and int(cells[4]) == 2  # NO, NS
    # --add naming --out itself (or a folder twice) pools its records once
    again = binpick(
        "simcell", "report", "--out", str(tmp_path / "seed1"), "--add", str(tmp_path / "seed1" / ".")
    )
    assert again.returncode == 0, again.stderr
    row = next(line for line in (tmp_path / "seed1" / "report.md").read_text().splitlines()
               if line.startswith("| overall | random point |"))  # fmt: skip
    assert int(row.split("|")[3]) == counts[1]
    missing = binpick("simcell", "report", "--out", str(tmp_path / "seed1"), "--add", str(tmp_path / "none"))
    assert missing.returncode == 2 and "--add" in missing.stderr
    # the pooled report in a folder of its own, not there yet (was: report.png: No such file or directory)
    pooled = binpick("simcell", "report", "--out", str(tmp_path / "pooled"), "--add", str(tmp_path / "seed1"),
                     "--add", str(tmp_path / "seed2"))  # fmt: skip
    assert pooled.returncode == 0, pooled.stderr
    row = next(line for line in (tmp_path / "pooled" / "report.md").read_text().splitlines()
               if line.startswith("| overall | random point |"))  # fmt: skip
    assert int(row.split("|")[3]) == counts[1] + counts[2]
    (tmp_path / "afile").write_text("")
    refused = binpick("simcell", "report", "--out", str(tmp_path / "afile"), "--add", str(tmp_path / "seed1"))
    assert refused.returncode == 2 and f"--out {tmp_path / 'afile'}: not a folder" in refused.stderr


def test_gif_of_a_few_baseline_cycles(tmp_path):
    out = tmp_path / "gif"
    proc = binpick("simcell", "gif", "--method", "highest", "--family", "square_sachet", "--cycles", "2",
                   "--size", "64", "--instances", "3", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    gif = out / "cycles_highest.gif"
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == 2 and image.size == (128, 64 + 34)  # two panels side by side, caption
    assert len((out / "gif_records_highest.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--family", "teapot"], "--family 'teapot': expected 'all' or some of"),
        (["run", "--method", "magic"], "--method 'magic': expected all or some of"),
        (["run", "--instances", "5-2"], "--instances '5-2': expected 1 <= MIN <= MAX"),
        (
            ["run", "--method", "ours", "--model", "/nonexistent.onnx"],
            "/nonexistent.onnx: model file not found",
        ),
        (["report", "--out", "/nonexistent-simcell"], "no records_*.jsonl found"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, message):
    proc = (
        binpick("simcell", *args, "--out", "/nonexistent-simcell")
        if args[0] == "run"
        else binpick("simcell", *args)
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_lighting_sweep_takes_two_models_and_measures_luminance(tmp_path, untrained):
    model, config = untrained
    out = tmp_path / "sweep"
    proc = binpick("simcell", "sweep", "--model-mikado", str(model), "--model-mikado-plus", str(model),
                   "--config", str(config), "--threads", "1", "--max-area", "config", "--family", "rigid_box",
                   "--sequences", "1", "--size", "64", "--instances", "2", "--gains", "0.4,2.0",
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "sweep_records.jsonl").read_text().splitlines()]
    assert {r["model_label"] for r in records} == {"mikado", "mikado+"}
    dark = [r["luminance"] for r in records if r["light_gain"] == 0.4]
    bright = [r["luminance"] for r in records if r["light_gain"] == 2.0]
    assert max(dark) < min(bright)  # the gain changes the image the model sees
    assert "| mikado+ |" in (out / "sweep.md").read_text() and (out / "sweep.png").is_file()


def test_lighting_sweep_without_any_model_says_so_in_one_line(tmp_path):
    proc = binpick("simcell", "sweep", "--family", "rigid_box", "--out", str(tmp_path / "sweep"))
    assert proc.returncode != 0
    assert "give --model-mikado, --model-mikado-plus or both" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bin_table_tells_an_empty_signal_beside_a_product_in_view_from_one_out_of_view():
    """bin_empty with a product left counts apart where the label image shows none of it in the
    bin's interior (the simulated camera crops the bin): no top camera can see that product."""
    from simcell.report import bin_table

    base = {"family": "stick_sachet", "method": "ours", "sequence": "s", "on_floor": False,
            "wall_collision": False, "fill_percent": 1.0, "fill_truth": 1.0}  # fmt: skip
    records = [
        {**base, "bin_empty": False},
        {**base, "bin_empty": True, "fill_truth": 1.5},  # a sliver of product in view
        {**base, "bin_empty": True, "fill_truth": 0.0},  # the product is out of view
        {**base, "bin_empty": True, "fill_truth": 0.0},
    ]
    row = next(line for line in bin_table(records).splitlines() if line.startswith("| stick_sachet |"))
    assert row.rstrip().endswith("| 1 / 2 |")
    # the empty signal's delay per pile: two seeds' piles share a sequence name, not a pile
    piles = ((1, 2), (2, 2), (3, 3))  # (seed, cycles after the last product)
    emptied = [{**base, "seed": seed, "empty_signal_after": after} for seed, after in piles]
    row = next(line for line in bin_table(emptied).splitlines() if line.startswith("| stick_sachet |"))
    assert "| 2 × 2, 3 × 1 |" in row


def test_failure_table_names_the_first_stage_that_went_wrong():
    """A leak on contact is the grasp point's; one that appears only after the press is the
    product's; records older than `seal_on_contact` say so instead of guessing."""
    from simcell.report import failure_stage, failure_table

    base = {"family": "rigid_box", "method": "ours", "q1": "no"}
    records = [
        {**base, "q1": "yes", "seal": "sealed", "seal_on_contact": "sealed"},
        {**base, "seal": "no grasp"},
        {
            **base,
            "seal": "leak: the cup overhangs an edge",
            "seal_on_contact": "leak: the cup overhangs an edge",
        },
        {**base, "seal": "leak: the cup spans several surfaces", "seal_on_contact": "sealed"},
        {**base, "seal": "leak: surface tilted 40 deg", "seal_on_contact": "sealed"},
        {**base, "seal": "seal lost: peel moment 0.052 N m", "seal_on_contact": "sealed"},
        {**base, "seal": "sealed", "seal_on_contact": "sealed"},
        {**base, "q1": "more", "seal": "sealed", "seal_on_contact": "sealed"},
    ]
    stages = [failure_stage(r) for r in records]
    assert stages == [None, "no grasp", "contact", "press", "press", "lift", "carried", "several"]
    row = next(line for line in failure_table(records).splitlines() if line.startswith("| rigid_box |"))
    assert row.endswith("| 8 | 7 | 1 | 1 | 2 | 1 | 1 | 1 |")
    assert "stage not recorded" not in failure_table(records)
    old = {**base, "seal": "leak: the cup overhangs an edge"}  # written before seal_on_contact
    assert failure_stage(old) == "unrecorded"
    table = failure_table(records + [old])
    assert "stage not recorded" in table
    row = next(line for line in table.splitlines() if line.startswith("| rigid_box |"))
    assert row.endswith("| 9 | 8 | 1 | 1 | 2 | 1 | 1 | 1 | 1 |")


def _cli(capsys, *argv: str) -> tuple[int, str]:
    """`binpick ARGV` in this process (no simulator start-up): exit code and stderr."""
    from edge.cli import main

    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pick-height-mm", "nan"], "--pick-height-mm nan: expected 0 to 1000 mm"),
        (["--pick-height-mm", "-5"], "--pick-height-mm -5.0: expected 0 to 1000 mm"),
        (["--max-area", "nan"], "--max-area 'nan': expected auto, config or a positive number"),
        (["--bin-floor-tolerance-mm", "nan"], "--bin-floor-tolerance-mm nan: expected 0 to 1000 mm"),
        (["--threads", "-1"], "--threads -1: expected 0"),
        (["--seed", "-1"], "--seed -1: expected a number >= 0"),
        (["--calibration-error-mm", "-1"], "--calibration-error-mm -1.0: expected 0 to 100 mm"),
        (["--calibration-error-mm", "inf"], "--calibration-error-mm inf: expected 0 to 100 mm"),
    ],
)
def test_bad_numbers_are_refused_before_anything_is_written(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code, err = _cli(capsys, "simcell", "run", "--method", "ours", "--model", str(tmp_path / "none.onnx"),
                     "--out", str(out), *args)  # fmt: skip
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not out.exists()


def test_size_is_bounded_like_mikado_generate(tmp_path, capsys):
    """--size 100000 ran out of memory (a 149 GiB array) after the run had started."""
    from mikado.generate import MAX_IMAGE_SIDE

    out = tmp_path / "out"
    code, err = _cli(capsys, "simcell", "run", "--out", str(out), "--method", "random",
                     "--family", "round_cookie", "--sequences", "1", "--size", "100000")  # fmt: skip
    assert code == 2 and f"--size 100000: expected 64..{MAX_IMAGE_SIDE} px" in err, err
    assert not out.exists()


@pytest.mark.parametrize("action", ["run", "sweep", "gif"])
def test_an_out_that_is_a_file_is_named_as_such(tmp_path, capsys, action):
    out = tmp_path / "results.txt"
    out.write_text("kept\n")
    extra = ["--model-mikado", str(tmp_path / "none.onnx")] if action == "sweep" else ["--method", "random"]
    code, err = _cli(capsys, "simcell", action, "--out", str(out), "--family", "rigid_box", *extra)
    assert code == 2 and f"--out {out}: is a file, expected a folder" in err, err
    assert out.read_text() == "kept\n"


def test_report_names_the_file_and_line_of_bytes_that_are_not_utf8(tmp_path, capsys):
    good = {"method": "ours", "family": "rigid_box", "sequence": "s", "q1": "yes", "q2": "yes", "q3": "none"}
    (tmp_path / "records_ours.jsonl").write_bytes(json.dumps(good).encode() + b'\n{"method": "\xff"}\n')
    code, err = _cli(capsys, "simcell", "report", "--out", str(tmp_path))
    assert code == 2 and "Traceback" not in err, err
    assert f"{tmp_path / 'records_ours.jsonl'}:2: not UTF-8 text (byte 0xff at column 13)" in err, err


def test_a_failed_start_keeps_the_last_sweep_film_and_run(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    kept = {
        name: f"{name} of the last run\n"
        for name in ("sweep_records.jsonl", "gif_records_ours.jsonl", "run.json")
    }
    for name, text in kept.items():
        (out / name).write_text(text)
    missing = str(tmp_path / "none.onnx")
    common = ["--family", "rigid_box", "--out", str(out)]
    attempts = [
        ("simcell", "sweep", *common),  # no model
        ("simcell", "sweep", *common, "--model-mikado", missing, "--size", "10"),
        ("simcell", "sweep", *common, "--model-mikado", missing),
        ("simcell", "gif", *common, "--method", "ours", "--model", missing),
        ("simcell", "run", *common, "--method", "ours", "--model", missing),
    ]
    for argv in attempts:
        code, err = _cli(capsys, *argv)
        assert code == 2 and "Traceback" not in err, (argv, err)
        assert {name: (out / name).read_text() for name in kept} == kept, argv


def test_report_names_the_line_of_a_record_without_a_family_and_checks_motion_time(tmp_path, capsys):
    from simcell.report import read_records

    (tmp_path / "records_ours.jsonl").write_text(
        json.dumps({"method": "ours", "sequence": "s", "q1": "yes", "q2": "yes", "q3": "none"}) + "\n"
    )
    with pytest.raises(ValueError, match=r"records_ours.jsonl:1: record lacks family"):
        read_records(tmp_path)
    for value in ("-1", "nan"):
        code, err = _cli(capsys, "simcell", "report", "--out", str(tmp_path), "--robot-motion-s", value)
        assert code == 2 and f"--robot-motion-s {float(value)}: expected seconds >= 0" in err, err


def test_report_keeps_runs_at_several_calibration_errors_apart_in_order():
    """Records of `--calibration-error-mm` runs pooled with exact ones: one row each, labelled,
    the exact one first and the errors ascending (the table used to drop a name it did not know)."""
    from simcell.report import method_label, table_rows

    def rec(method, q1):
        return {"method": method, "family": "rigid_box", "sequence": "s", "q1": q1, "q2": "yes",
                "q3": "none", "vision_ms": 1.0, "sim_s": 1.0}  # fmt: skip

    names = ("ours_cal10mm", "ours_cal2.5mm", "ours", "planar_stereo")
    records = [rec(name, q1) for name, q1 in zip(names, ("no", "yes", "yes", "no"), strict=True)]
    rows = [(family, method) for family, method, _ in table_rows(records, 3.0) if family == "rigid_box"]
    assert rows == [("rigid_box", m) for m in ("ours", "ours_cal2.5mm", "ours_cal10mm", "planar_stereo")]
    assert method_label("ours_cal2.5mm") == "ours (bicameral + ranking), calibration off by 2.5 mm"
    assert method_label("ours") == "ours (bicameral + ranking)"
    assert method_label("something_new") == "something_new"
