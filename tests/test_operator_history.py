"""The operator page's memory: picks with their PLC outcome, per-minute charts, error log, and the
frame hub's one-encode-per-publication rule."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from edge.health.history import THUMB_PX, CellHistory
from edge.health.live import FrameHub
from edge.plc.register_map import RegisterMap

OUTCOME = RegisterMap.load().pick_outcome
PICKED, FAILED = OUTCOME["picked"], OUTCOME["failed"]


def test_picks_keep_their_outcome_and_thumbnails_at_the_image_border():
    history = CellHistory(OUTCOME, picks=3)
    rgb = np.full((120, 160, 3), 200, np.uint8)
    for sequence, (u, v) in enumerate([(0, 0), (80, 60), (159, 119), (5, 100)], start=1):
        history.published(sequence, rgb, u, v, 1.0 + sequence, 40)
    history.pick_outcome(3, PICKED)
    history.pick_outcome(4, FAILED)
    history.pick_outcome(99, PICKED)  # an unknown sequence: counted in the rate, no pick row
    picks = history.view()["picks"]
    assert [(p["sequence"], p["outcome"]) for p in picks] == [(4, "failed"), (3, "picked"), (2, "pending")]
    thumb = cv2.imdecode(np.frombuffer(history.thumbnail(4), np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape == (THUMB_PX, THUMB_PX, 3)
    # (5, 100) is near the left and bottom edges: the square beyond them is black, the rest grey
    assert thumb[0, 0].max() < 20 and thumb[-1, -1].max() < 20 and thumb[0, -1].min() > 150
    assert history.thumbnail(1) == b""  # dropped from the last 3


def test_charts_bin_the_last_hour_by_minute_and_errors_link_their_snapshot():
    history = CellHistory(OUTCOME)
    for ms, error in ((100.0, "ok"), (300.0, "ok"), (200.0, "no_candidate"), (50.0, "not_running")):
        history.cycle(ms, error, "msg", 7, "snap-1" if error == "no_candidate" else "")
    history.pick_outcome(1, PICKED)
    history.pick_outcome(2, FAILED)
    view = history.view()
    assert len(view["chart"]) == 60 and view["bin_s"] == 60.0
    last = view["chart"][-1]
    assert last["cycles"] == 4 and last["p50_ms"] == 150.0 and last["max_ms"] == 300.0
    assert last["grasp_rate"] == 0.5 and last["pick_rate"] == 0.5
    assert [e["error"] for e in view["errors"]] == ["no_candidate"] and view["errors"][0][
        "snapshot"
    ] == "snap-1"
    assert all(b["cycles"] == 0 for b in history.view(now=time.time() + 7200)["chart"])  # an hour later


def test_frame_hub_encodes_each_publication_once_for_all_viewers():
    renders = []
    hub = FrameHub(lambda: renders.append(1) or b"jpeg")
    assert hub.jpeg() == (hub.latest, b"") and not renders  # nothing published: nothing drawn
    got = []

    def viewer():
        latest = hub.wait(0, 5.0)
        got.append(hub.jpeg()[1] if latest.version else b"")

    threads = [threading.Thread(target=viewer) for _ in range(5)]
    for t in threads:
        t.start()
    hub.publish(sequence=12)
    for t in threads:
        t.join(5)
    assert got == [b"jpeg"] * 5 and len(renders) == 1 and hub.latest.sequence == 12
    hub.publish(sequence=13)
    hub.jpeg()
    hub.jpeg()
    assert len(renders) == 2


def _traced_bytes_after(record, cycles: int) -> int:
    """The bytes still allocated (tracemalloc) after `cycles` calls of `record(i)`."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(cycles):
            record(i)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()


def test_the_histories_stop_growing_at_their_capacity():
    """What a cell that runs for months keeps of its cycles: a plateau at each history's capacity
    (docs/appliance.md "Long runs" gives the default capacities' figures), not a growth per cycle.
    Small capacities here; the same code path with 20,000 and 500."""
    from edge.health.stats import STAGES, CycleStats

    rgb = np.full((160, 160, 3), 120, np.uint8)

    def fill(cycles: int) -> int:
        history, stats = CellHistory(OUTCOME, picks=5, errors=10, cycles=500), CycleStats(window=100)

        def record(i: int) -> None:
            error = "ok" if i % 10 else "no_candidate"
            stats.record({s: 1.0 + i % 7 for s in STAGES}, error, {"sequence": i, "error": error})
            history.cycle(800.0 + i % 13, error, "no instance candidate", i)
            if error == "ok":
                history.published(i, rgb, 80.0, 60.0, 0.9, 40.0)
                history.pick_outcome(i, PICKED)
            if i % 50 == 0:
                history.action("local", "snapshot", "ok")

        return _traced_bytes_after(record, cycles)

    at_capacity, three_times = fill(500), fill(1500)
    assert at_capacity > 50_000  # 500 cycle and outcome records and five crops: it measures
    assert abs(three_times - at_capacity) < 0.1 * at_capacity, (at_capacity, three_times)
