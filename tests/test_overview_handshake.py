"""The status page's one-line handshake summary (`edge.health.overview.handshake`) from the live
registers, as a PLC programmer reads it while commissioning."""

from __future__ import annotations

from edge.health.overview import handshake


def regs(trigger_id: int, trigger_ack: int, **bits: bool) -> dict:
    return {"trigger_id": trigger_id, "trigger_ack": trigger_ack, "sequence_id": 4, "request_id": trigger_ack,
            "result_ack": 3, "status_bits": bits}  # fmt: skip


def test_a_trigger_written_while_busy_shows_as_queued():
    assert handshake(regs(9, 8, busy=True), True) == (
        "busy: cycle for trigger 8 running; trigger 9 queued, its result comes next"
    )
    assert handshake(regs(8, 8, busy=True), True) == "busy: cycle for trigger 8 running"
    assert handshake(regs(0, 8, busy=True), True) == "busy: cycle for trigger 8 running"  # 0: re-armed


def test_idle_and_pending_states():
    assert handshake(regs(9, 8), True) == "trigger 9 written, not accepted yet"
    assert handshake(regs(8, 8), True).startswith("idle: waiting for a new trigger_id (last 8")
    assert handshake(regs(0, 8, result_valid=True), True).startswith("result 4 valid (request 8)")
