"""Pick feedback: the PLC reports a failed pick, the appliance offers another instance for a while.

Parts: `edge.ranking.pick_feedback.FailedPickMemory` (what is remembered and for how long), the register
bank (the PLC's write), `edge.ranking.selection` (which candidate goes last) and the simulated
cell's baselines (same memory for every method).
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.plc.bank import MAX_PICK_OUTCOMES, PublishedResult, RegisterBank, WriteRejected
from edge.plc.register_map import RegisterMap
from edge.ranking.pick_feedback import FailedPickMemory, waits

MAP = RegisterMap.load()
PICKED, FAILED = MAP.pick_outcome.picked, MAP.pick_outcome.failed


def test_a_failed_published_grasp_is_avoided_for_its_cycles_then_forgotten():
    memory = FailedPickMemory(forget_after_cycles=2, radius_px=5.0)
    memory.published(7, 40.0, 50.0)
    memory.published(8, 10.0, 10.0)
    assert memory.outcome(8, failed=False) is False  # a success changes nothing
    assert memory.outcome(99, failed=True) is False  # an id it never published: ignored
    assert memory.outcome(7, failed=True) is True
    assert memory.begin_cycle() == [(40.0, 50.0)]
    assert memory.begin_cycle() == [(40.0, 50.0)]
    assert memory.begin_cycle() == []  # forgotten after 2 cycles


def test_a_report_on_a_grasp_published_before_clear_marks_nothing():
    """A new bin (clear) while the PLC has yet to report the old bin's last pick: the late
    report must not put the old bin's point into the new bin's cycles."""
    memory = FailedPickMemory(forget_after_cycles=3, radius_px=5.0)
    memory.published(41, 64.0, 147.0)
    memory.clear()
    assert memory.outcome(41, failed=True) is False
    assert memory.begin_cycle() == []
    memory.published(42, 10.0, 20.0)  # the new bin's grasps are reported as before
    assert memory.outcome(42, failed=True) is True
    assert memory.begin_cycle() == [(10.0, 20.0)]


def test_a_grasp_waits_inside_the_failed_region_or_near_the_failed_point():
    labels = np.zeros((20, 20), np.int32)
    labels[:, 10:] = 7
    failed = [(15.0, 5.0)]  # a point of region 7
    assert waits(12.0, 18.0, 7, labels, failed, radius=3.0)  # far from it, but the same region
    assert waits(13.0, 5.0, 0, labels, failed, radius=3.0)  # another region, but within the radius
    assert not waits(3.0, 5.0, 0, labels, failed, radius=3.0)
    assert not waits(12.0, 18.0, 7, None, failed, radius=3.0)  # no labels: the radius alone


def test_zero_cycles_disables_the_memory():
    memory = FailedPickMemory(forget_after_cycles=0, radius_px=5.0)
    memory.published(1, 3.0, 4.0)
    assert memory.outcome(1, failed=True) is False
    memory.failed_at(3.0, 4.0)
    assert memory.begin_cycle() == []


def test_the_plc_reports_an_outcome_in_one_write_and_out_of_range_values_are_refused():
    bank = RegisterBank(MAP)
    first, second = bank.publish(PublishedResult(1, 0)), bank.publish(PublishedResult(2, 0))
    address = MAP["pick_outcome"].address
    assert MAP["pick_outcome_id"].address == address + 1  # one function-16 write: outcome, id
    bank.plc_write(address, [FAILED, first])
    bank.plc_write(address, [PICKED, second])
    assert bank.take_pick_outcomes() == [(first, FAILED), (second, PICKED)]
    assert bank.take_pick_outcomes() == []
    with pytest.raises(WriteRejected):
        bank.plc_write(address, [3, first])
    assert bank.take_pick_outcomes() == []


def test_reports_wait_in_a_bounded_queue_and_only_for_published_grasps_count():
    """Between cycles (idle mode, waiting for a trigger) nothing takes the reports: the queue keeps
    the newest MAX_PICK_OUTCOMES; a report for an id that published no grasp is counted, not kept."""
    bank = RegisterBank(MAP)
    grasp = bank.publish(PublishedResult(1, 0))
    failed_cycle = bank.publish(PublishedResult(2, MAP.error_code("no_candidate")))
    address = MAP["pick_outcome"].address
    for never_published in (failed_cycle, failed_cycle + 1, 40000):
        bank.plc_write(address, [FAILED, never_published])
    assert bank.ignored_pick_outcomes == 3 and bank.take_pick_outcomes() == []
    for _ in range(10 * MAX_PICK_OUTCOMES):  # a PLC rewriting its report every scan
        bank.plc_write(address, [PICKED, grasp])
    bank.plc_write(address, [FAILED, grasp])
    taken = bank.take_pick_outcomes()
    assert len(taken) == MAX_PICK_OUTCOMES and taken[-1] == (grasp, FAILED)
    assert bank.dropped_pick_outcomes == 9 * MAX_PICK_OUTCOMES + 1


def test_selection_skips_the_candidate_holding_a_failed_grasp_and_falls_back_when_all_failed():
    pytest.importorskip("edge._hotpath")
    from edge.ranking import RankingParams, rank
    from edge.ranking.selection import select_grasp

    params = RankingParams(min_area=10, max_area=np.inf, score="thesis")  # the area term decides here
    y = np.ones((48, 96), np.float32)
    y[8:40, 4:44] = 0.0  # large: ranked first on area
    y[12:36, 60:84] = 0.0
    z = np.zeros_like(y)
    ranking = rank(y, z, params, return_labels=True)
    best = select_grasp(ranking, y, z, params, False, None)
    assert best.candidate_index == 0 and best.u < 44
    # The robot failed at a point of the large region (not its grasp point): its instance waits.
    second = select_grasp(ranking, y, z, params, False, None, avoid=[(10.0, 12.0)], avoid_radius=3.0)
    assert second.candidate_index == 1 and second.u > 60
    # Both failed recently: the frame still gets a grasp, in rank order.
    both = [(10.0, 12.0), (70.0, 20.0)]
    again = select_grasp(ranking, y, z, params, False, None, avoid=both, avoid_radius=3.0)
    assert again.candidate_index == 0


def test_cell_baselines_move_away_from_a_failed_grasp(tmp_path):
    pytest.importorskip("mujoco")
    from simcell.cell import Cell
    from simcell.pickers import BaselinePicker

    cell = Cell(5, "mikado+", 192, 192, families=("square_sachet",), heterogeneous=0.0, instances=(8, 8))
    for kind in ("planar", "highest"):
        memory = FailedPickMemory(forget_after_cycles=1, radius_px=12.0)
        # exact depth: a stereo camera's fresh noise draw each attempt would move the grasp by itself
        picker = BaselinePicker(kind, tmp_path / kind, 20.0, memory=memory, depth="exact")
        picker.bind(cell)
        obs = cell.observe()
        first = picker.propose(cell, obs).pixel
        assert picker.propose(cell, obs).pixel == first  # no report: the same grasp again
        picker.report(picked=False)
        moved = picker.propose(cell, obs).pixel
        assert np.hypot(moved[0] - first[0], moved[1] - first[1]) >= 12.0, (kind, first, moved)
        assert picker.propose(cell, obs).pixel == first  # one cycle later it is forgotten
        picker.report(picked=False)
        picker.bind(cell)  # a new pile starts with a clean memory: sequences stay independent
        assert picker.propose(cell, obs).pixel == first
