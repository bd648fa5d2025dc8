"""The thesis's questions (Figure 5.12) and metrics (Table C.2) on scripted situations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simcell.scoring import Thresholds, extraction_answer, grasp_answers, metrics, picks_per_minute


def scene(*rects: tuple[int, int, int, int, int], size: int = 80):
    """Labels painted back to front from (id, x0, y0, x1, y1) rectangles; amodal = full rectangle."""
    labels = np.zeros((size, size), np.uint16)
    amodal = {}
    for k, x0, y0, x1, y1 in rects:
        labels[y0:y1, x0:x1] = k
        mask = np.zeros((size, size), bool)
        mask[y0:y1, x0:x1] = True
        amodal[k] = mask
    return labels, amodal.__getitem__


def test_centred_pick_on_an_unoccluded_instance():
    labels, amodal = scene((1, 10, 20, 70, 50))
    q2, q3, detected, share = grasp_answers(labels, (40, 35), 4, amodal)
    assert (q2, q3, detected, share) == ("yes", "none", 1, 0.0)


def test_pick_near_the_border_is_not_centred():
    labels, amodal = scene((1, 10, 20, 70, 50))
    q2, q3, detected, _ = grasp_answers(labels, (13, 35), 2, amodal)
    assert (q2, q3, detected) == ("no", "none", 1)


def test_pick_between_two_instances():
    labels, amodal = scene((1, 10, 20, 40, 50), (2, 40, 20, 70, 50))
    q2, q3, detected, share = grasp_answers(labels, (40, 35), 6, amodal)
    assert (q2, q3, detected) == ("between", "-", 0) and math.isnan(share)


def test_a_thin_sliver_of_a_neighbour_under_the_cup_is_not_between_two():
    labels, amodal = scene((1, 10, 20, 40, 50), (2, 40, 20, 70, 50))
    q2, _, detected, _ = grasp_answers(labels, (34, 35), 6, amodal)  # neighbour covers < 20 % of the disc
    assert (q2, detected) == ("no", 1)  # one instance, but 6 px from its border of a 15 px half-width


def test_pick_on_a_highly_occluded_instance():
    # Instance 1 underneath, instance 2 lies over 40 % of it.
    labels, amodal = scene((1, 10, 20, 60, 50), (2, 10, 20, 30, 50))
    q2, q3, detected, share = grasp_answers(labels, (45, 35), 4, amodal)
    assert detected == 1 and q2 == "yes" and q3 == "high"
    assert share == pytest.approx(20 * 30 / (50 * 30))


def test_pick_on_a_weakly_occluded_instance():
    labels, amodal = scene((1, 10, 20, 60, 50), (2, 10, 20, 15, 50))
    _, q3, detected, share = grasp_answers(labels, (38, 35), 4, amodal)
    assert (q3, detected) == ("weak", 1) and share == pytest.approx(0.1)


def test_the_bin_and_the_image_border_do_not_count_as_occluders():
    labels, amodal = scene((1, 10, 20, 60, 50))
    amodal_big = {1: np.pad(amodal(1), ((0, 0), (0, 20)))[:, 20:]}  # amodal reaches outside the visible part
    _, q3, _, share = grasp_answers(labels, (35, 35), 4, amodal_big.__getitem__)
    assert q3 == "none" and share == 0.0


def test_pick_on_the_bin_floor():
    labels, amodal = scene((1, 10, 20, 30, 50))
    assert grasp_answers(labels, (70, 70), 4, amodal)[:3] == ("no", "-", 0)


def test_thresholds_are_honoured():
    labels, amodal = scene((1, 10, 20, 60, 50), (2, 10, 20, 15, 50))
    strict = Thresholds(weak_occlusion=0.2)
    assert grasp_answers(labels, (38, 35), 4, amodal, strict)[1] == "none"


def test_extraction_answers():
    assert extraction_answer([]) == "no"
    assert extraction_answer([3]) == "yes"
    assert extraction_answer([3, 4]) == "more"


def rec(q1, q2, q3, seq="a", vision_ms=100.0):
    return {"q1": q1, "q2": q2, "q3": q3, "sequence": seq, "vision_ms": vision_ms}


def test_metrics_follow_table_c2():
    records = [
        rec("yes", "yes", "none"),
        rec("yes", "yes", "weak"),
        rec("yes", "no", "none", "b"),
        rec("yes", "yes", "none", "b"),
        rec("no", "yes", "none"),  # well detected, failed: the virtual margin
        rec("no", "between", "-"),
        rec("more", "no", "high", "c"),
        rec("no", "yes", "weak", "c"),
    ]
    m = metrics(records)
    assert m["NO"] == 8 and m["NS"] == 3
    assert m["SR"] == pytest.approx(4 / 8)
    assert m["MV"] == pytest.approx(1 / 4)
    assert m["SV"] == pytest.approx(5 / 8)
    assert m["SV"] == pytest.approx(m["SR"] + (1 - m["SR"]) * m["MV"])  # the identity Table C.3 obeys
    assert m["SC"] == pytest.approx(3 / 4)
    assert m["SNO"] == pytest.approx(3 / 4)
    assert m["FNC"] == pytest.approx(2 / 4)
    assert m["FO"] == pytest.approx(2 / 4)


def test_metrics_without_failures_leave_failure_ratios_undefined():
    m = metrics([rec("yes", "yes", "none")])
    assert m["SR"] == 1.0 and math.isnan(m["MV"]) and math.isnan(m["FNC"])


def test_picks_per_minute_from_vision_and_robot_time():
    records = [rec("yes", "yes", "none", vision_ms=500.0), rec("no", "no", "-", vision_ms=500.0)]
    assert picks_per_minute(records, robot_motion_s=2.5) == pytest.approx(60 * 1 / 6.0)
