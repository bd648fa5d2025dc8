"""Tables and plots from attempt records: Table C.3-style Markdown and Figure 5.18-style curves."""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from simcell.scoring import METRICS, metrics, picks_per_minute

# "_nofit": the appliance's seal check ([suction], edge.ranking.suction) off, the grasp at the
# ranking's own point (centroid or inscribed centre).
METHOD_LABELS = {
    "ours": "ours (bicameral + ranking)",
    "ours_nofit": "ours, no seal check",
    "ours_exact": "ours, exact depth",
    "ours_exact_nofit": "ours, exact depth, no seal check",
    "ours_cue": "ours + depth cue, stereo depth",
    "ours_cue_nofit": "ours + depth cue, stereo depth, no seal check",
    "ours_cue_exact": "ours + depth cue, exact depth",
    "ours_cue_exact_nofit": "ours + depth cue, exact depth, no seal check",
    "cue": "depth cue in place of Z, stereo depth",
    "cue_nofit": "depth cue in place of Z, stereo depth, no seal check",
    "cue_exact": "depth cue in place of Z, exact depth",
    "cue_exact_nofit": "depth cue in place of Z, exact depth, no seal check",
    "oracle": "ranking on exact maps (ceiling)",
    "oracle_exact": "ranking on exact maps (ceiling), seal check on exact depth",
    "oracle_nofit": "ranking on exact maps (ceiling), no seal check",
    "planar": "planar region (industrial)",
    "planar_stereo": "planar region (industrial), stereo depth",
    "highest": "highest point",
    "highest_stereo": "highest point, stereo depth",
    "random": "random point",
}


CALIBRATION_SUFFIX = re.compile(r"^(?P<base>.+)_cal(?P<mm>[0-9.e+-]+)mm$")


def method_name(picker_name: str, calibration_error_mm: float) -> str:
    """The records' method (simcell.loop): the picker's name, with `_cal<D>mm` when the cell's
    calibration is off by D mm, so runs at several errors pool; `_split_method` reads it back."""
    if calibration_error_mm == 0.0:
        return picker_name
    return f"{picker_name}_cal{calibration_error_mm:g}mm"


def _split_method(method: str) -> tuple[str, float]:
    """(picker name, calibration error in mm) of a record's method (simcell.loop.method_name)."""
    match = CALIBRATION_SUFFIX.match(method)
    if match is None:
        return method, 0.0
    try:
        return match["base"], float(match["mm"])
    except ValueError:
        return method, 0.0


def method_label(method: str) -> str:
    """The table's words for a record's method; a cell whose calibration was off says by how much."""
    base, error_mm = _split_method(method)
    label = METHOD_LABELS.get(base, base)
    return label if error_mm == 0.0 else f"{label}, calibration off by {error_mm:g} mm"


def method_order(methods: Iterable[str]) -> list[str]:
    """The methods present, in METHOD_LABELS order (unknown names after), each by its calibration
    error: a sweep over errors reads down the table."""
    known = list(METHOD_LABELS)

    def key(method: str) -> tuple[int, str, float]:
        base, error_mm = _split_method(method)
        return (known.index(base) if base in known else len(known), base, error_mm)

    return sorted(set(methods), key=key)


# Keys every attempt record has (simcell.loop.run_sequence) and every table reads.
RECORD_KEYS = ("method", "family", "sequence", "q1", "q2", "q3")


def read_records(folder: Path, pattern: str = "records_*.jsonl") -> list[dict]:
    records = []
    for path in sorted(folder.glob(pattern)):
        for line_no, raw in enumerate(path.read_bytes().splitlines(), start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:  # without the file, "can't decode byte 0xff" says nothing
                byte = f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
                raise ValueError(f"{path}:{line_no}: not UTF-8 text ({byte})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not a JSON record ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{line_no}: not a JSON record (expected an object)")
            missing = [key for key in RECORD_KEYS if key not in record]
            if missing:  # the tables would stop on a KeyError with no file or line to look at
                raise ValueError(f"{path}:{line_no}: record lacks {', '.join(missing)}")
            records.append(record)
    return records


def _cell(value: float | None) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.2f}".replace("0.", ".", 1) if value < 1 else f"{value:.2f}"


def _by_family_and_method(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """The records per (family, method), and per ("overall", method): every table's rows, in the
    order the tables print them (families by name, the overall rows last)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["family"], r["method"])].append(r)
        groups[("overall", r["method"])].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0] == "overall", kv[0])))


def _head(columns: list[str]) -> list[str]:
    """A Markdown table's header and alignment rows: two text columns, the rest numbers."""
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(columns) - 2)) + "|",
    ]


def table_rows(records: list[dict], robot_motion_s: float) -> list[tuple[str, str, dict]]:
    """(family, method, metrics + PPM) per family and method, then "overall" per method."""
    groups = _by_family_and_method(records)
    families = sorted({f for f, _ in groups if f != "overall"}) + ["overall"]
    methods = method_order(k[1] for k in groups)
    rows = []
    for family in families:
        for method in methods:
            recs = groups.get((family, method))
            if recs:
                row = metrics(recs)
                row["PPM"] = picks_per_minute(recs, robot_motion_s)
                row["vision_ms"] = float(np.median([r["vision_ms"] for r in recs]))
                failures = [r for r in recs if r["q1"] != "yes"]
                floor = sum(bool(r.get("on_floor")) for r in failures)
                row["FF"] = floor / len(failures) if failures else float("nan")
                rows.append((family, method, row))
    return rows


def bin_table(records: list[dict]) -> str:
    """Floor picks and wall collisions per family and method (every method), and where the
    appliance models the bin (`--bin`), its fill level against the simulator's and the bin_empty
    timing. Empty-signal columns: cycles after the last product left until bin_empty (within the
    watch), and cycles with bin_empty set while product remained (must be 0), as "in view / out
    of view": out of view when the label image shows no product in the interior (the camera
    crops the bin; no top camera can see such a product)."""
    groups = _by_family_and_method(records)
    head = ["product family", "method", "attempts", "floor picks", "wall collisions",
            "fill error (mean / max)", "bin_empty after (cycles)",
            "bin_empty with product (in / out of view)"]  # fmt: skip
    lines = _head(head)
    for (family, method), recs in groups.items():
        grasps = [r for r in recs if "on_floor" in r]
        floor = sum(bool(r["on_floor"]) for r in grasps)
        walls = sum(bool(r.get("wall_collision")) for r in grasps)
        errors = [abs(r["fill_percent"] - r["fill_truth"]) for r in recs
                  if r.get("fill_percent") is not None and r.get("fill_truth") is not None]  # fmt: skip
        fill = f"{np.mean(errors):.1f} / {np.max(errors):.1f}" if errors else "–"
        signals = {
            (r.get("seed"), r["sequence"]): r["empty_signal_after"] for r in recs if "empty_signal_after" in r
        }
        # per emptied pile (a pile is its seed: pooled runs reuse sequence names), as "cycles × piles"
        tally = Counter("never" if v is None else str(v) for v in signals.values())
        after = ", ".join(f"{k} × {n}" for k, n in sorted(tally.items())) or "–"
        early = "–"
        if "bin_empty" in recs[0]:
            raised = [r for r in recs if r.get("bin_empty")]
            out_of_view = sum(r.get("fill_truth") == 0.0 for r in raised)
            early = f"{len(raised) - out_of_view} / {out_of_view}"
        lines.append(
            f"| {family} | {method_label(method)} | {len(recs)} | {floor} | {walls} | {fill} "
            f"| {after} | {early} |"
        )
    return "\n".join(lines)


# Where a failed attempt failed, in the order a pick goes through (docs/simcell.md "Why attempts
# fail"): the column names the first stage that went wrong.
FAILURE_STAGES = (
    ("no grasp", "no grasp"),
    ("contact", "no seal where the cup came down"),
    ("press", "moved under the press"),
    ("lift", "lost in the lift"),
    ("carried", "sealed and lifted, none extracted"),
    ("several", "several extracted"),
    ("unrecorded", "stage not recorded"),
)


def failure_stage(record: dict) -> str | None:
    """The stage at which an attempt failed (a key of FAILURE_STAGES), None for a success.

    The seal is judged twice in the simulated cup: where it came down (`seal_on_contact`) and
    after the press (`seal`). A leak already on contact is the grasp point's fault (the cup
    overhangs or spans two products); a leak that appears only after the press is the product's
    (it slid, rolled or folded under 3 N). Records written before `seal_on_contact` existed
    tell the lift's and the extraction's failures apart, not the contact's from the press's."""
    if record["q1"] == "yes":
        return None
    if record["q1"] == "more":
        return "several"
    seal = record["seal"]
    if seal == "no grasp":
        return "no grasp"
    if seal.startswith("seal lost"):
        return "lift"
    if seal == "sealed":
        return "carried"
    contact = record.get("seal_on_contact")
    if contact is None:
        return "unrecorded"
    return "press" if contact == "sealed" else "contact"


def failure_table(records: list[dict]) -> str:
    """Failed attempts per family and method, split by the stage at which they failed
    (`failure_stage`), as counts of attempts."""
    groups = _by_family_and_method(records)
    counts = {key: Counter(filter(None, map(failure_stage, recs))) for key, recs in groups.items()}
    unrecorded = any(c["unrecorded"] for c in counts.values())
    stages = [(k, name) for k, name in FAILURE_STAGES if k != "unrecorded" or unrecorded]
    head = ["product family", "method", "attempts", "failed", *(name for _, name in stages)]
    lines = _head(head)
    for (family, method), recs in groups.items():
        failed = counts[(family, method)]
        cells = [str(len(recs)), str(sum(failed.values()))] + [str(failed[k]) for k, _ in stages]
        lines.append(f"| {family} | {method_label(method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(rows: list[tuple[str, str, dict]]) -> str:
    head = ["product family", "method", *METRICS, "FF", "PPM", "vision ms (median)"]
    lines = _head(head)
    for family, method, row in rows:
        values = [_cell(row[m]) for m in [*METRICS, "FF"]] + [f"{row['PPM']:.1f}", f"{row['vision_ms']:.0f}"]
        lines.append(f"| {family} | {method_label(method)} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def plot_success(rows: list[tuple[str, str, dict]], path: Path) -> None:
    """SR (solid bars) and SV (hatched extension) per family and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(f for f, _, _ in rows))
    methods = list(dict.fromkeys(m for _, m, _ in rows))
    lookup = {(f, m): r for f, m, r in rows}
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(families) + 2), 4))
    for k, method in enumerate(methods):
        xs = np.arange(len(families)) + (k - (len(methods) - 1) / 2) * width
        sr = [lookup.get((f, method), {}).get("SR", np.nan) for f in families]
        sv = [lookup.get((f, method), {}).get("SV", np.nan) for f in families]
        bars = ax.bar(xs, sr, width, label=method_label(method))
        ax.bar(
            xs,
            np.subtract(sv, sr),
            width,
            bottom=sr,
            color=bars.patches[0].get_facecolor(),
            alpha=0.35,
            hatch="//",
        )
    ax.set_xticks(np.arange(len(families)), families, rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel("success rate: SR (solid), SV (hatched)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep_points(records: list[dict]) -> dict[str, list[tuple[float, float, float, int]]]:
    """Per model label: (mean luminance, SR, SV, NO) per light gain, sorted by luminance."""
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["model_label"], r["light_gain"])].append(r)
    out: dict[str, list] = defaultdict(list)
    for (label, _gain), recs in groups.items():
        m = metrics(recs)
        out[label].append((float(np.mean([r["luminance"] for r in recs])), m["SR"], m["SV"], m["NO"]))
    return {k: sorted(v) for k, v in out.items()}


def plot_sweep(points: dict[str, list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, pts in points.items():
        lum, sr, sv = (np.array([p[i] for p in pts]) for i in range(3))
        (line,) = ax.plot(lum, sr, "-o", label=f"{label} SR")
        ax.plot(lum, sv, "--", color=line.get_color(), label=f"{label} SV")
    ax.set_xlabel("global image luminance (mean grey level, 0-255)")
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep_table(points: dict[str, list]) -> str:
    lines = ["| model | luminance | SR | SV | NO |", "|---|---:|---:|---:|---:|"]
    for label, pts in points.items():
        for lum, sr, sv, n in pts:
            lines.append(f"| {label} | {lum:.0f} | {_cell(sr)} | {_cell(sv)} | {n} |")
    return "\n".join(lines)
