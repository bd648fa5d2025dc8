"""The register bank: the appliance's one copy of the PLC registers and the trigger handshake.

Both Modbus servers (TCP and RTU) read and write this bank through `read` and `plc_write`, and
the supervisor publishes through `accept_trigger` / `publish`. Every method takes one lock for
its whole update, so a PLC never reads a half-written result block: the result words, then the
sequence id, then the status bits change together from any reader's point of view, in that
order.

Handshake (triggered mode):
1. the PLC writes a non-zero `trigger_id` different from the value it wrote there before (so a
   0 in between re-arms the same id); in free-run mode a trigger write is only stored;
2. the appliance copies it to `trigger_ack`, raises busy and drops result_valid;
3. the cycle runs; its result block (with `request_id` = the trigger) is written, then
   `sequence_id` (+1), then busy falls and result_valid rises (only if a grasp was found and no
   newer trigger is queued);
4. the PLC writes `result_ack` = sequence_id; result_valid falls.
A trigger written while a cycle runs is queued one deep: a later one replaces it (the replaced id
is never acknowledged), and the running cycle's result does not raise result_valid, since the
PLC already asked for a newer one. A result is never shown twice as new (sequence ids only grow,
result_ack drops the flag) and a stale one is never shown as fresh (a new trigger and
`result_ttl_s` drop the flag).
5. (optional) after the robot's attempt, the PLC writes `pick_outcome` and `pick_outcome_id` =
   the sequence_id it tried; the supervisor takes them with `take_pick_outcomes`, at its next
   cycle. Until then they wait in a queue of `MAX_PICK_OUTCOMES` (the oldest dropped, counted):
   in idle mode, or waiting for a trigger, a PLC could report without end (150,000 reports once
   grew the process's memory). A report for a sequence id that did not publish a grasp (never
   published, a failed cycle's, or older than the last `MAX_PICK_OUTCOMES` grasps) is ignored
   and counted: the page's pick rate counts the appliance's own grasps only.

Stop (`stopping`, then `close`): ready falls at once and stays down whatever mode the PLC
writes; the cycle in flight finishes and publishes as any other (busy falls with it). Then every
trigger not taken by a cycle (the one queued, any written until the servers close) is answered
like a trigger in idle mode: trigger_ack, then a result block with result_error not_running and
a new sequence_id; error_code says not_running from then on. A trigger is never left without an
answer while the servers still listen.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from dataclasses import dataclass

from edge.plc.register_map import RegisterMap

# A cell reports at most one outcome per grasp and takes them every cycle: 64 is a long backlog.
MAX_PICK_OUTCOMES = 64


@dataclass
class PublishedResult:
    """What one finished cycle puts in the result block (error = 0 means a grasp was found)."""

    request_id: int
    error: int
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    angle: float = 0.0
    score: float = 0.0
    candidate_count: int = 0
    extent_major: float = 0.0
    extent_minor: float = 0.0
    latency_ms: float = 0.0
    # The units of x, y, z and the extents (the `pixel_mode` status bit), written under the same
    # lock as the result words: set apart, the bit changed at the start of the cycle that took up a
    # new calibration, and a PLC read the previous cycle's pixels flagged as millimetres (or the
    # reverse) until the result arrived. None leaves the bit as it is (answers the bank makes itself).
    pixel_mode: bool | None = None


class RequestRejected(Exception):
    """A PLC request the appliance refuses; `exception_code` is the Modbus exception to answer."""

    def __init__(self, message: str, exception_code: int):
        super().__init__(message)
        self.exception_code = exception_code


class WriteRejected(RequestRejected):
    """A PLC write the appliance refuses (counted, and error code invalid_plc_write set)."""


ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03


class RegisterBank:
    """Thread-safe register image with the handshake rules built in."""

    def __init__(self, register_map: RegisterMap, triggered: bool = True):
        self.map = register_map
        self.triggered = triggered
        self._words = [0] * register_map.size
        self._lock = threading.Lock()
        self._trigger_event = threading.Condition(self._lock)
        self._pending_trigger: int | None = None
        self._result_time = 0.0
        self._pick_outcomes: deque[tuple[int, enum.IntEnum]] = deque(maxlen=MAX_PICK_OUTCOMES)
        self._grasps: deque[int] = deque(maxlen=MAX_PICK_OUTCOMES)  # sequence ids that published a grasp
        self.dropped_pick_outcomes = 0  # queue full: the oldest report went
        self.ignored_pick_outcomes = 0  # for a sequence id that published no grasp
        self.rejected_writes = 0
        self.last_rejection = ""
        self._initialised = False
        self._closed = False  # stopped: triggers are answered not_running at once
        self._set("protocol_version", register_map.protocol_version)
        self._set("mode", register_map.mode.run)
        self._set_bit("triggered", triggered)

    # ----------------------------------------------------------------- raw access
    def _addr(self, name: str) -> int:
        return self.map[name].address

    def _set(self, name: str, value: int) -> None:
        self._words[self._addr(name)] = int(value) & 0xFFFF

    def _get(self, name: str) -> int:
        return self._words[self._addr(name)]

    def _set_float(self, name: str, value: float) -> None:
        address = self._addr(name)
        self._words[address], self._words[address + 1] = self.map.float_to_words(value)

    def _set_bit(self, name: str, on: bool) -> None:
        mask = self.map.bit_mask(name)
        status = self._addr("status")
        self._words[status] = (self._words[status] | mask) if on else (self._words[status] & ~mask)

    def _bit(self, name: str) -> bool:
        return bool(self._words[self._addr("status")] & self.map.bit_mask(name))

    def read(self, address: int, count: int) -> list[int]:
        with self._lock:
            return self._words[address : address + count]

    def plc_read(self, address: int, count: int) -> list[int]:
        """A PLC read (function 3 or 4): `count` words from `address`, or RequestRejected
        (ILLEGAL_ADDRESS) when they reach beyond the map; a gap inside the map reads 0. Not an
        error of the appliance: error_code and rejected_writes are left alone."""
        if address < 0 or count < 1 or address + count > self.map.size:
            raise RequestRejected(
                f"read of {count} word(s) at {address} is outside the register map (0..{self.map.size - 1})",
                ILLEGAL_ADDRESS,
            )
        return self.read(address, count)

    def value(self, name: str) -> int:
        with self._lock:
            return self._get(name)

    def flag(self, name: str) -> bool:
        with self._lock:
            return self._bit(name)

    @property
    def mode(self) -> str:
        """Name of the PLC's mode (an enum.mode name of the map)."""
        return self.map.enum_name("mode", self.value("mode")) or self.map.mode.idle.name

    # ----------------------------------------------------------------- PLC side
    def plc_write(self, address: int, values: list[int]) -> None:
        """Apply a PLC write (any address 0..65535), or raise WriteRejected (the bank records the
        error code and counts it)."""
        with self._lock:
            try:
                self._check_write(address, values)
            except WriteRejected as exc:
                self.rejected_writes += 1
                self.last_rejection = str(exc)
                self._set_error(self.map.error_code("invalid_plc_write"))
                raise
            previous_trigger = self._get("trigger_id")
            for offset, value in enumerate(values):
                self._words[address + offset] = value
            written = {self.map.owner(address + i).name for i in range(len(values))}
            if "trigger_id" in written and self.triggered:
                trigger = self._get("trigger_id")
                # A request is a non-zero value other than the one written before (not the last
                # acknowledged one): writing 0 in between re-arms the same id.
                if trigger != 0 and trigger != previous_trigger:
                    self._pending_trigger = trigger  # one deep: a queued, unaccepted id is replaced
                    self._set_bit("result_valid", False)  # from this write on, the old result is stale
                    self._trigger_event.notify_all()
                    if self._closed:  # no cycle will take it: answered now
                        self._refuse_pending()
            if "result_ack" in written and self._get("result_ack") == self._get("sequence_id"):
                self._set_bit("result_valid", False)
            if "mode" in written:
                self._set_bit("ready", self._initialised and self._get("mode") == self.map.mode.run)
            if "pick_outcome_id" in written and self._get("pick_outcome_id") != 0:
                self._note_pick_outcome(self._get("pick_outcome_id"))

    def _note_pick_outcome(self, sequence: int) -> None:
        """Queue a report for the supervisor, or count it away (see the module's step 5)."""
        if sequence not in self._grasps:
            self.ignored_pick_outcomes += 1
            return
        if len(self._pick_outcomes) == self._pick_outcomes.maxlen:
            self.dropped_pick_outcomes += 1
        outcome = self.map.pick_outcome(self._get("pick_outcome"))  # checked on write
        self._pick_outcomes.append((sequence, outcome))

    def _check_write(self, address: int, values: list[int]) -> None:
        for offset, value in enumerate(values):
            reg = self.map.owner(address + offset)
            if reg is None:
                raise WriteRejected(f"write to unmapped address {address + offset}", ILLEGAL_ADDRESS)
            if reg.access != "w":
                raise WriteRejected(
                    f"write to read-only register {address + offset} ({reg.name})", ILLEGAL_ADDRESS
                )
            if reg.enum:
                if not self.map.enum_name(reg.enum, value):
                    names = ", ".join(f"{int(v)} ({v.name})" for v in self.map.enums[reg.enum])
                    raise WriteRejected(f"{reg.name} = {value} is not one of {names}", ILLEGAL_VALUE)
            elif not 0 <= value <= reg.max:
                raise WriteRejected(f"{reg.name} = {value} out of range 0..{reg.max}", ILLEGAL_VALUE)

    # ----------------------------------------------------------------- appliance side
    def mark_initialised(self, model_id: int) -> None:
        """Camera, model and servers are up: publish the model id and raise ready (in run mode)."""
        with self._lock:
            self._initialised = True
            self._set("model_id", model_id & 0xFFFF)
            self._set_bit("ready", self._get("mode") == self.map.mode.run)

    def stopping(self) -> None:
        """The appliance stops: ready falls now and no mode write raises it again. A cycle in
        flight still publishes; `close` answers the triggers no cycle takes."""
        with self._lock:
            self._initialised = False
            self._set_bit("ready", False)

    def close(self) -> int | None:
        """No cycle runs any more (busy falls; a cycle stuck beyond the stop's wait is given up):
        the queued trigger, and every trigger written from now on, is answered at once with error
        not_running (trigger_ack, result block, sequence_id), and error_code says not_running.
        Returns the queued trigger it answered (None: none)."""
        with self._lock:
            self._initialised = False
            self._closed = True
            self._set_bit("ready", False)
            self._set_bit("busy", False)  # a cycle still stuck after the stop's wait is given up
            refused = self._refuse_pending()
            self._set_error(self.map.error_code("not_running"))
            return refused

    def _refuse_pending(self) -> int | None:
        """Answer the queued trigger with not_running, as a cycle in idle mode does (lock held)."""
        trigger, self._pending_trigger = self._pending_trigger, None
        if trigger is not None:
            self._set("trigger_ack", trigger)
            self._publish(PublishedResult(trigger, self.map.error_code("not_running")))
        return trigger

    def wait_trigger(self, timeout: float) -> int | None:
        """Block until the PLC requests a cycle; returns its trigger id (None on timeout)."""
        with self._trigger_event:
            if self._pending_trigger is None:
                self._trigger_event.wait(timeout)
            trigger, self._pending_trigger = self._pending_trigger, None
            return trigger

    def wake(self) -> None:
        """Release a `wait_trigger` (used when stopping)."""
        with self._trigger_event:
            self._trigger_event.notify_all()

    def accept_trigger(self, trigger_id: int) -> None:
        """Step 2: acknowledge, raise busy, drop the previous result (it is stale now)."""
        with self._lock:
            self._set("trigger_ack", trigger_id)
            self._set_bit("busy", True)
            self._set_bit("result_valid", False)

    def begin_cycle(self) -> None:
        """Free-run: a cycle starts; the previous result stays valid until replaced or expired."""
        with self._lock:
            self._set_bit("busy", True)

    def publish(self, result: PublishedResult) -> int:
        """Write the result block, then the sequence id, then the status; returns the sequence id."""
        with self._lock:
            return self._publish(result)

    def _publish(self, result: PublishedResult) -> int:
        """`publish` with the lock held."""
        self._set("request_id", result.request_id)
        self._set("result_error", result.error)
        for name in ("x", "y", "z", "angle", "score", "extent_major", "extent_minor"):
            self._set_float(name, getattr(result, name))
        self._set_float("latency", result.latency_ms)
        self._set("candidate_count", min(result.candidate_count, 0xFFFF))
        sequence = self._get("sequence_id") % 0xFFFF + 1  # 1..65535, never 0
        self._set("sequence_id", sequence)
        if result.error == 0:  # (ids wrap after 65535: the 64 kept are never that old)
            self._grasps.append(sequence)
        self._set_error(result.error)
        if result.pixel_mode is not None:
            self._set_bit("pixel_mode", result.pixel_mode)
        self._set_bit("busy", False)
        # A trigger queued meanwhile asked for a newer result: this one is not shown as fresh.
        queued = self._pending_trigger is not None
        self._set_bit("result_valid", result.error == 0 and not queued)
        self._result_time = time.monotonic()
        return sequence

    def _set_error(self, code: int) -> None:
        self._set("error_code", code)
        self._set_bit("error", code != 0)

    def set_error(self, code: int) -> None:
        with self._lock:
            self._set_error(code)

    def set_bin(self, fill_percent: float, pile_height_mm: float, empty: bool) -> None:
        """The bin block (fill level, pile height) and the bin_empty bit, together."""
        with self._lock:
            self._set_float("fill_level", fill_percent)
            self._set_float("pile_height", pile_height_mm)
            self._set_bit("bin_empty", empty)

    def set_flag(self, name: str, on: bool) -> None:
        with self._lock:
            self._set_bit(name, on)

    def tick(self, result_ttl_s: float, alive: bool = True) -> None:
        """Heartbeat and expiry of stale results; called at >= 1 Hz from one task.

        `alive` False (the cycle thread is stuck) freezes the heartbeat, so the PLC sees a hung
        appliance even though its Modbus server still answers.
        """
        with self._lock:
            if alive:
                self._set("heartbeat", (self._get("heartbeat") + 1) & 0xFFFF)
            expired = time.monotonic() - self._result_time > result_ttl_s
            if result_ttl_s > 0 and expired and self._bit("result_valid"):
                self._set_bit("result_valid", False)

    def take_pick_outcomes(self) -> list[tuple[int, enum.IntEnum]]:
        """The (sequence_id, outcome) pairs the PLC reported since the last call, oldest first;
        each outcome a member of the map's `pick_outcome` enumeration."""
        with self._lock:
            outcomes = list(self._pick_outcomes)
            self._pick_outcomes.clear()
            return outcomes

    def snapshot(self) -> dict[str, int]:
        """Every named register (float pairs decoded) and status bit, for the status page."""
        with self._lock:
            words = list(self._words)
        out: dict = {}
        for reg in self.map.registers:
            if reg.type == "float32":
                out[reg.name] = round(self.map.words_to_float(words[reg.address], words[reg.address + 1]), 4)
            else:
                out[reg.name] = words[reg.address]
        status = words[self.map["status"].address]
        out["status_bits"] = {name: bool(status & (1 << b.bit)) for name, b in self.map.bits.items()}
        return out
