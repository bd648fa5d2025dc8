"""The trigger handshake rules of the register bank (the appliance side is driven directly here;
tests/test_appliance_run.py drives the same handshake through a running appliance)."""

from __future__ import annotations

import threading
import time

import pytest

from edge.plc.bank import PublishedResult, RegisterBank, WriteRejected
from edge.plc.register_map import RegisterMap

MAP = RegisterMap.load()


def plc_trigger(bank: RegisterBank, trigger: int) -> None:
    bank.plc_write(MAP["trigger_id"].address, [trigger])


def test_trigger_ack_busy_then_result_then_valid():
    bank = RegisterBank(MAP)
    bank.mark_initialised(5)
    plc_trigger(bank, 11)
    assert bank.wait_trigger(1.0) == 11
    bank.accept_trigger(11)
    assert bank.value("trigger_ack") == 11 and bank.flag("busy") and not bank.flag("result_valid")
    sequence = bank.publish(PublishedResult(request_id=11, error=0, x=10.0))
    assert sequence == 1
    assert bank.flag("result_valid") and not bank.flag("busy")
    assert bank.value("request_id") == 11
    bank.plc_write(MAP["result_ack"].address, [sequence])
    assert not bank.flag("result_valid")  # consumed: never shown twice as new


def test_the_same_trigger_id_twice_starts_one_cycle_only():
    bank = RegisterBank(MAP)
    plc_trigger(bank, 4)
    assert bank.wait_trigger(0.5) == 4
    bank.accept_trigger(4)
    plc_trigger(bank, 4)
    assert bank.wait_trigger(0.05) is None
    plc_trigger(bank, 0)  # 0 = no request
    assert bank.wait_trigger(0.05) is None


def test_a_new_trigger_makes_the_previous_result_stale():
    bank = RegisterBank(MAP)
    bank.publish(PublishedResult(request_id=1, error=0))
    assert bank.flag("result_valid")
    plc_trigger(bank, 2)
    bank.accept_trigger(bank.wait_trigger(0.5))
    assert not bank.flag("result_valid")


def test_a_failed_cycle_completes_the_handshake_with_an_error_code_and_no_valid_result():
    bank = RegisterBank(MAP)
    code = MAP.error_code("no_candidate")
    bank.publish(PublishedResult(request_id=9, error=code))
    assert bank.value("error_code") == code and bank.value("result_error") == code
    assert bank.flag("error") and not bank.flag("result_valid") and not bank.flag("busy")
    bank.publish(PublishedResult(request_id=10, error=0))
    assert bank.value("error_code") == 0 and not bank.flag("error")


def test_results_expire_after_the_ttl():
    ttl = 1.0  # long enough that no stall of a loaded machine expires it before the first tick
    bank = RegisterBank(MAP)
    published = time.monotonic()
    bank.publish(PublishedResult(request_id=0, error=0))
    bank.tick(result_ttl_s=ttl)
    assert bank.flag("result_valid")
    deadline = published + ttl + 10
    while bank.flag("result_valid") and time.monotonic() < deadline:
        time.sleep(0.02)
        bank.tick(result_ttl_s=ttl)
    assert not bank.flag("result_valid")  # it fell, and not before the TTL had passed
    assert time.monotonic() - published >= ttl


def test_sequence_ids_wrap_without_ever_being_zero():
    bank = RegisterBank(MAP)
    seen = [bank.publish(PublishedResult(request_id=0, error=0)) for _ in range(65536)]
    assert 0 not in seen and seen[0] == 1 and seen[65534] == 65535 and seen[65535] == 1


def test_mode_changes_move_the_ready_bit_and_bad_modes_are_rejected():
    bank = RegisterBank(MAP)
    bank.mark_initialised(1)
    assert bank.flag("ready")
    bank.plc_write(MAP["mode"].address, [0])
    assert bank.mode == "idle" and not bank.flag("ready")
    with pytest.raises(WriteRejected):
        bank.plc_write(MAP["mode"].address, [3])
    assert bank.mode == "idle" and bank.value("error_code") == MAP.error_code("invalid_plc_write")


def test_readers_never_see_a_torn_result_block():
    """A reader hammering the block while results are published sees each block whole."""
    bank = RegisterBank(MAP)
    start, count = MAP.block("result")
    stop = threading.Event()
    torn = []

    def reader():
        words_to_float = MAP.words_to_float

        while not stop.is_set():
            words = bank.read(start, count)
            x = words_to_float(*words[MAP["x"].address - start : MAP["x"].address - start + 2])
            y = words_to_float(*words[MAP["y"].address - start : MAP["y"].address - start + 2])
            rid = words[MAP["request_id"].address - start]
            if not (x == rid and y == -rid):
                torn.append((rid, x, y))

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(1, 3000):
        bank.publish(PublishedResult(request_id=i, error=0, x=float(i), y=float(-i)))
    stop.set()
    thread.join()
    assert torn == []


def test_heartbeat_freezes_while_the_cycle_is_stuck():
    bank = RegisterBank(MAP)
    bank.tick(0, alive=True)
    bank.tick(0, alive=True)
    assert bank.value("heartbeat") == 2
    bank.tick(0, alive=False)
    assert bank.value("heartbeat") == 2


def test_writing_0_re_arms_the_same_trigger_id():
    """A request is a non-zero value different from the one written before, not from trigger_ack:
    a PLC whose counter restarts (power cycle) at the id of the last cycle still gets its cycle."""
    bank = RegisterBank(MAP)
    plc_trigger(bank, 4)
    bank.accept_trigger(bank.wait_trigger(0.5))
    bank.publish(PublishedResult(request_id=4, error=0))
    plc_trigger(bank, 4)  # the same value again: no request
    assert bank.wait_trigger(0.05) is None
    plc_trigger(bank, 0)
    assert bank.wait_trigger(0.05) is None
    assert bank.flag("result_valid")  # 0 is no request: the result stays valid
    plc_trigger(bank, 4)  # re-armed: 4 again is a new request
    assert bank.wait_trigger(0.5) == 4
    assert not bank.flag("result_valid")  # stale from the request on


def test_a_queued_trigger_keeps_the_finishing_cycles_result_from_turning_valid():
    bank = RegisterBank(MAP)
    plc_trigger(bank, 1)
    bank.accept_trigger(bank.wait_trigger(0.5))
    plc_trigger(bank, 2)  # queued while 1 runs
    bank.publish(PublishedResult(request_id=1, error=0))
    assert not bank.flag("result_valid") and not bank.flag("busy")
    bank.accept_trigger(bank.wait_trigger(0.5))
    bank.publish(PublishedResult(request_id=2, error=0))
    assert bank.flag("result_valid") and bank.value("request_id") == 2


def test_free_run_stores_a_trigger_write_and_ignores_it():
    """No cycle waits for triggers in free-run mode: a trigger write must neither queue a request
    nor make results stale (a queued request would keep every later result invalid)."""
    bank = RegisterBank(MAP, triggered=False)
    plc_trigger(bank, 7)
    assert bank.value("trigger_id") == 7 and bank.wait_trigger(0.05) is None
    bank.begin_cycle()
    bank.publish(PublishedResult(request_id=0, error=0))
    assert bank.flag("result_valid")
