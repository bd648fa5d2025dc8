"""The appliance's one process: capture → infer → rank → ROI → pixel→robot → publish, forever.

Parts and the thread each lives in:
- the cycle (one thread): camera, model, ranking, geometry; every failure of a cycle becomes an
  error code in the registers and a counter on the status page, never an exception that ends the
  loop;
- the PLC (`PlcService`, one asyncio thread): Modbus TCP and RTU servers over one
  `RegisterBank`, and the heartbeat/expiry tick;
- the status page (its own thread), systemd notifications and the watchdog (main thread).
The watchdog is only fed while the cycle thread makes progress, so a hung driver makes systemd
restart the service instead of leaving a silent cell.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.camera import CameraError, CameraLost, CameraSource, open_camera
from edge.config import Config
from edge.depth_cue import DepthCueStage
from edge.grasp_selection import select_grasp
from edge.health.history import CellHistory
from edge.health.live import FrameHub
from edge.health.overview import public_config
from edge.health.sd_notify import Notifier
from edge.health.snapshots import SnapshotRing
from edge.health.stats import CycleStats
from edge.inference.base import InferenceError
from edge.pick_feedback import FailedPickMemory
from edge.plc.bank import PublishedResult, RegisterBank
from edge.plc.register_map import RegisterMap
from edge.plc.service import PlcService

log = logging.getLogger("binpick")
FAILED_CYCLE_PAUSE_S = 0.5  # free-run: pause after a failed cycle (empty folder, dead camera...)


class StartupError(RuntimeError):
    """The appliance cannot start (message says what to fix)."""


class CycleFailure(Exception):
    """A cycle ended without a grasp; `error` names a row of the register map's error table."""

    def __init__(self, error: str, message: str):
        super().__init__(message)
        self.error = error


@dataclass
class CycleOutcome:
    sequence: int
    request_id: int
    error: str
    message: str
    result: PublishedResult
    stages_ms: dict[str, float]
    pixel_mode: bool
    detail: dict = field(default_factory=dict)

    def line(self, cycle: int) -> str:
        """One line per cycle, as `binpick run --print` shows it."""
        r = self.result
        head = f"cycle {cycle} seq {self.sequence}"
        if self.request_id:
            head += f" trigger {self.request_id}"
        if self.error != "ok":
            return f"{head} error {self.error}: {self.message}"
        unit = "px" if self.pixel_mode else "mm"
        return (
            f"{head} grasp x={r.x:.1f} y={r.y:.1f} z={r.z:.1f} {unit} angle={r.angle:.1f} deg "
            f"score={r.score:.3f} extents={r.extent_major:.1f}x{r.extent_minor:.1f} {unit} "
            f"candidates={r.candidate_count} latency={r.latency_ms:.0f} ms"
            + (" [pixel mode]" if self.pixel_mode else "")
        )


class CalibrationWatcher:
    """Watches the calibration file and reloads it when it changes on disk (the wizard replaces
    it atomically); `current` is the loaded `edge.calibration_file.Calibration` or None (pixel
    mode)."""

    def __init__(self, path: str, required: bool):
        self.path = path
        self.required = required
        self.current = None
        self.error = ""
        self._mtime: float | None = -1.0  # never a real mtime: the first refresh always loads
        self.refresh()

    def refresh(self) -> None:
        if not self.path:
            return
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        if mtime is None:
            self.current, self.error = None, f"{self.path}: calibration file not found"
        else:
            try:
                from edge.calibration_file import load_calibration

                self.current, self.error = load_calibration(self.path), ""
                log.info("calibration loaded from %s", self.path)
            except Exception as exc:  # CalibrationError names the field; anything else is reported too
                self.current, self.error = None, str(exc)
        if self.error:
            mode = "cycles fail with calibration_missing" if self.required else "running in pixel mode"
            log.warning("%s; %s", self.error, mode)

    @property
    def pixel_mode(self) -> bool:
        return self.current is None


class Supervisor:
    def __init__(self, config: Config, print_lines: bool = False, max_cycles: int | None = None):
        self.config = config
        self.print_lines = print_lines
        self.max_cycles = max_cycles
        self.stats = CycleStats()
        self.notifier = Notifier()
        self.stop_event = threading.Event()
        self.done_event = threading.Event()
        self.register_map = RegisterMap.load(config.plc.registers)
        self.bank = RegisterBank(self.register_map, triggered=config.appliance.mode == "triggered")
        self.snapshots = SnapshotRing(config.health.snapshot_dir, config.health.snapshot_keep)
        self.camera: CameraSource | None = None
        self.predictor = None
        self.calibration = CalibrationWatcher(config.calibration.file, config.calibration.required)
        self.ranking_params = None
        self.depth_cue = DepthCueStage.from_config(config.inference)  # edge/depth_cue.py
        feedback = config.pick_feedback
        self.failed_picks = FailedPickMemory(feedback.forget_after_cycles, feedback.radius_px)
        self.status_server = None
        # the operator page's picks, charts and error log
        self.history = CellHistory(self.register_map.pick_outcome)
        self.frames = FrameHub(lambda: self.overlay_image(".jpg"))  # the page's live image
        self.stall_limit_s = max(15.0, 3 * config.camera.timeout_s)  # no cycle progress this long = hung
        self.plc = PlcService(self.bank, config.plc, alive=self.cycle_alive)
        self._cycle_thread: threading.Thread | None = None
        self._progress_mono = time.monotonic()
        self._last = None  # (rgb, maps, ranking, outcome) of the last cycle, for overlays and snapshots
        self._last_lock = threading.Lock()
        self._last_failure_snapshot = 0.0
        self._cycles = 0
        self.lingering_threads = 0  # threads still inside a driver or the model after stop()

    # ------------------------------------------------------------------ start / stop
    def start(self) -> None:
        """Open every part, start the PLC servers, the status page and the cycle thread."""
        cfg = self.config
        self.notifier.status("starting")
        self.open_parts()
        self.plc.start()
        if cfg.health.http_enabled:
            from edge.health.status_server import StatusServer

            try:
                self.status_server = StatusServer(
                    self, cfg.health.http_host, cfg.health.http_port, cfg.health.users, cfg.health.tokens
                )
                self.status_server.start()
                log.info("status page on http://%s:%d/", *self.status_server.address)
            except OSError as exc:
                log.error(
                    "status page not started on %s:%d: %s", cfg.health.http_host, cfg.health.http_port, exc
                )
        self.bank.mark_initialised(self.predictor.model_id)
        self.stats.state = "running"
        self._cycle_thread = threading.Thread(target=self._cycle_loop, name="cycle", daemon=True)
        self._cycle_thread.start()
        self.notifier.ready(f"running ({cfg.appliance.mode})")

    def open_parts(self) -> None:
        """Camera, model and ranking: everything a cycle needs (no servers, no threads)."""
        cfg = self.config
        self.camera = open_camera(cfg.camera)
        try:
            self.camera.open()
        except CameraError as exc:
            raise StartupError(str(exc)) from exc
        from edge.inference.predictor import Predictor

        self.ranking_params = cfg.ranking.params()
        if cfg.inference.backend in ("tensorrt", "auto"):
            # A first TensorRT engine build can take minutes on a Jetson: ask systemd for time.
            self.notifier.notify("EXTEND_TIMEOUT_USEC=900000000", "STATUS=loading the model (TensorRT build)")
        try:
            self.predictor = Predictor(cfg.inference, (cfg.camera.width, cfg.camera.height))
        except InferenceError as exc:
            self.camera.close()
            raise StartupError(str(exc)) from exc
        log.info("model %s on %s", cfg.inference.model, self.predictor.describe())
        if self.calibration.pixel_mode:
            log.warning("no calibration: running in PIXEL MODE (x, y and extents in pixels, z = 0)")
        self.bank.set_flag("pixel_mode", self.calibration.pixel_mode)

    def cycle_once(self, request_id: int = 0) -> CycleOutcome:
        """One cycle in the caller's thread (benchmarks, tools); the loop uses the same path."""
        outcome = self._guarded_cycle(request_id)
        self._finish(outcome)
        return outcome

    def run(self) -> int:
        """Block until SIGTERM/SIGINT (via `stop`) or `max_cycles`; feed systemd meanwhile."""
        interval = self.notifier.watchdog_interval_s
        next_status = 0.0
        while not self.stop_event.wait(min(interval or 1.0, 1.0)):
            now = time.monotonic()
            if interval and self.cycle_alive():
                self.notifier.watchdog()
            if now >= next_status:
                self.notifier.status(self._status_line())
                next_status = now + 5.0
        return 0

    def cycle_alive(self) -> bool:
        """The cycle thread made progress recently (feeds the systemd watchdog and the heartbeat)."""
        return time.monotonic() - self._progress_mono < self.stall_limit_s

    def stop(self) -> None:
        """Stop every part; returns within a few seconds even with a cycle in flight."""
        if self.stats.state == "stopping":
            return
        self.stats.state = "stopping"
        self.notifier.stopping()
        self.stop_event.set()
        self.bank.wake()
        if self._cycle_thread is not None:
            self._cycle_thread.join(timeout=5)
        self.plc.stop()
        if self.status_server is not None:
            self.status_server.stop()
        if self.camera is not None:
            self.camera.close()
            self.lingering_threads = self.camera.lingering_threads()
        cycle_stuck = self._cycle_thread is not None and self._cycle_thread.is_alive()
        self.lingering_threads += int(cycle_stuck)
        if self.predictor is not None and not cycle_stuck:  # never free a model a cycle still runs
            self.predictor.backend.close()
        self.stats.state = "stopped"

    def _status_line(self) -> str:
        p = self.stats.percentiles().get("total", {})
        s = self.stats.summary()
        errors = sum(s["errors"].values())
        return f"cycles={s['cycles']} p50={p.get('p50', 0)}ms errors={errors} {s['last_error'][:80]}"

    # ------------------------------------------------------------------ the cycle
    def _cycle_loop(self) -> None:
        cfg = self.config
        triggered = cfg.appliance.mode == "triggered"
        while not self.stop_event.is_set():
            self._progress_mono = time.monotonic()
            if triggered:
                trigger = self.bank.wait_trigger(0.2)
                if trigger is None or self.stop_event.is_set():
                    continue
                self.bank.accept_trigger(trigger)
                if self.bank.mode != "run":
                    self._finish(self._failure(trigger, "not_running", f"mode is {self.bank.mode}", {}, None))
                    continue
                outcome = self._guarded_cycle(trigger)
            else:
                if self.bank.mode != "run":
                    self.stop_event.wait(0.1)
                    continue
                started = time.monotonic()
                self.bank.begin_cycle()
                outcome = self._guarded_cycle(0)
                rest = cfg.appliance.cycle_period_s - (time.monotonic() - started)
                if outcome.error != "ok":  # a failing part is not retried in a tight loop
                    rest = max(rest, FAILED_CYCLE_PAUSE_S)
                if rest > 0:
                    self.stop_event.wait(rest)
            self._finish(outcome)
            if self.max_cycles is not None and self._cycles >= self.max_cycles:
                self.done_event.set()
                self.stop_event.set()

    def _guarded_cycle(self, request_id: int) -> CycleOutcome:
        try:
            return self._cycle(request_id)
        except Exception as exc:  # the loop outlives any bug in one cycle; the snapshot keeps the evidence
            log.exception("cycle failed unexpectedly")
            return self._failure(request_id, "internal", f"{type(exc).__name__}: {exc}", {}, None)

    def _cycle(self, request_id: int) -> CycleOutcome:
        stages: dict[str, float] = {}
        t0 = time.monotonic()
        for sequence, outcome in self.bank.take_pick_outcomes():
            self.history.pick_outcome(sequence, outcome)
            if self.failed_picks.outcome(sequence, outcome == self.register_map.pick_outcome.failed):
                log.info("pick of sequence %d failed (PLC): its instance waits a few cycles", sequence)
        avoid = self.failed_picks.begin_cycle()
        self.calibration.refresh()
        self.bank.set_flag("pixel_mode", self.calibration.pixel_mode)
        if self.calibration.required and self.calibration.pixel_mode:
            return self._failure(request_id, "calibration_missing", self.calibration.error, stages, None)
        try:
            frame = self.camera.grab(self.config.camera.timeout_s)
        except CameraLost as exc:
            self.bank.set_flag("camera_ok", False)
            _lap(stages, "capture", t0)
            return self._failure(request_id, "camera_lost", str(exc), stages, None)
        except CameraError as exc:
            _lap(stages, "capture", t0)
            return self._failure(request_id, "no_image", str(exc), stages, None)
        self.bank.set_flag("camera_ok", True)
        start = frame.captured_mono  # latency counts from the moment the image existed
        t = _lap(stages, "capture", t0)
        try:
            maps = self.predictor.predict(frame.rgb, frame.depth_m)
        except InferenceError as exc:
            return self._failure(request_id, "model_error", str(exc), stages, (frame, None, None))
        t = _lap(stages, "inference", t)
        stages["preprocess"] = maps.preprocess_ms  # reported on its own, taken out of inference
        stages["inference"] -= maps.preprocess_ms
        maps = self.depth_cue.apply(maps, frame.depth_m)  # [inference] depth_cue; off: unchanged
        ranking = self.predictor.rank(maps, self.ranking_params)  # on the GPU when the maps are there
        t = _lap(stages, "ranking", t)
        context = (frame, maps, ranking)
        if not ranking.candidates:
            return self._failure(
                request_id, "no_candidate", "no instance candidate in the image", stages, context
            )
        pick = self._pick_in_roi(ranking, maps, avoid)
        if pick is None:
            n = len(ranking.candidates)
            return self._failure(
                request_id, "empty_roi", f"none of {n} candidates is inside the ROI", stages, context
            )
        result = self._to_robot(request_id, pick, maps, len(ranking.candidates))
        t = _lap(stages, "geometry", t)
        result.latency_ms = (time.monotonic() - start) * 1000.0
        sequence = self.bank.publish(result)
        self.failed_picks.published(sequence, pick["u"], pick["v"])
        self.history.published(sequence, frame.rgb, pick["u"], pick["v"], pick["score"], pick["major_px"])
        _lap(stages, "publish", t)
        outcome = CycleOutcome(sequence, request_id, "ok", "", result, stages, self.calibration.pixel_mode)
        outcome.detail = {"pick": pick}
        self._remember(context, outcome)
        return outcome

    def _pick_in_roi(self, ranking, maps, avoid=()) -> dict | None:
        """The grasp `edge.grasp_selection` chooses inside the calibration's ROI, in camera pixels,
        away from the recently failed grasps `avoid` (camera pixels)."""
        roi = None if self.calibration.pixel_mode else self.calibration.current.roi_polygon
        sx, sy = maps.scale_x, maps.scale_y
        option = select_grasp(
            ranking, maps.boundaries, maps.occlusions, self.ranking_params,
            self.config.ranking.prefer_occluding_side, roi, (sx, sy),
            avoid=[(u / sx, v / sy) for u, v in avoid],
            avoid_radius=self.failed_picks.radius_px / max(sx, sy),
        )  # fmt: skip
        if option is None:
            return None
        rad = math.radians(option.angle_deg)  # the axis direction, re-measured in camera pixels
        cos, sin = math.cos(rad), math.sin(rad)
        return {
            "u": option.u * maps.scale_x, "v": option.v * maps.scale_y, "score": option.score,
            "angle_deg": math.degrees(math.atan2(sin * maps.scale_y, cos * maps.scale_x)),
            "major_px": option.major_px * math.hypot(maps.scale_x * cos, maps.scale_y * sin),
            "minor_px": option.minor_px * math.hypot(maps.scale_x * sin, maps.scale_y * cos),
        }  # fmt: skip

    def _to_robot(self, request_id: int, pick: dict, maps, count: int) -> PublishedResult:
        u, v, angle = pick["u"], pick["v"], pick["angle_deg"]
        if self.calibration.pixel_mode:
            return PublishedResult(
                request_id, 0, u, v, 0.0, angle, pick["score"], count, pick["major_px"], pick["minor_px"]
            )
        cal = self.calibration.current
        height = self.config.calibration.pick_height_mm
        xyz = np.asarray(cal.pixel_to_robot(u, v, height_mm=height), float)
        rad = math.radians(angle)
        ahead = np.asarray(
            cal.pixel_to_robot(u + 10 * math.cos(rad), v + 10 * math.sin(rad), height_mm=height), float
        )
        robot_angle = math.degrees(math.atan2(ahead[1] - xyz[1], ahead[0] - xyz[0]))
        scale = float(cal.mm_per_pixel_at(u, v))
        return PublishedResult(
            request_id, 0, *xyz[:3].tolist(), robot_angle, pick["score"], count,
            pick["major_px"] * scale, pick["minor_px"] * scale,
        )  # fmt: skip

    def _failure(self, request_id: int, error: str, message: str, stages: dict, context) -> CycleOutcome:
        code = self.register_map.error_code(error)
        result = PublishedResult(request_id, code)
        sequence = self.bank.publish(result)
        self.stats.set_error(f"{error}: {message}")
        log.warning("cycle error %s (%d): %s", error, code, message)
        outcome = CycleOutcome(
            sequence, request_id, error, message, result, stages, self.calibration.pixel_mode
        )
        if context is not None:
            self._remember(context, outcome)
        h = self.config.health
        now = time.monotonic()
        if (
            h.snapshot_on_failure
            and error != "not_running"
            and now - self._last_failure_snapshot >= h.snapshot_min_interval_s
        ):
            self._last_failure_snapshot = now
            try:
                outcome.detail["snapshot"] = os.path.basename(self.snapshot(f"failure-{error}", outcome))
            except OSError as exc:
                log.error("failure snapshot not written: %s", exc)
        return outcome

    def _finish(self, outcome: CycleOutcome) -> None:
        self._cycles += 1
        payload = {
            "sequence": outcome.sequence,
            "request_id": outcome.request_id,
            "error": outcome.error,
            "message": outcome.message,
            "pixel_mode": outcome.pixel_mode,
            **{k: v for k, v in vars(outcome.result).items() if k not in ("request_id", "error")},
        }
        self.stats.record(outcome.stages_ms, outcome.error, payload)
        self.history.cycle(
            sum(outcome.stages_ms.values()), outcome.error, outcome.message, outcome.sequence,
            outcome.detail.get("snapshot", ""),
        )  # fmt: skip
        if self.print_lines:
            print(outcome.line(self._cycles), flush=True)

    def _remember(self, context, outcome: CycleOutcome) -> None:
        with self._last_lock:
            self._last = (context, outcome)
        self.frames.publish(outcome.sequence, outcome.error)

    # ------------------------------------------------------------------ status page provider
    def status(self) -> dict:
        summary = self.stats.summary()
        return {
            **summary,
            "mode": self.config.appliance.mode,
            "plc_mode": self.bank.mode,
            "pixel_mode": self.calibration.pixel_mode,
            "calibration": {"file": self.calibration.path, "error": self.calibration.error},
            "cycle_ms": self.stats.percentiles(),
            "camera": self.camera.status() if self.camera else {},
            "inference": self.predictor.describe() if self.predictor else {},
            "depth_cue": self.depth_cue.status(),
            "plc": {
                **self.plc.state,
                "tcp_clients": self.plc.gate.state(),
                "rejected_writes": self.bank.rejected_writes,
                "last_rejection": self.bank.last_rejection,
            },
            "registers": self.bank.snapshot(),
            "failed_picks_avoided": [
                (round(x.u, 1), round(x.v, 1), x.cycles_left) for x in self.failed_picks.spots
            ],
            "snapshots": self.snapshots.list()[-5:],
            "config": self.config.source,
        }

    def overlay_png(self) -> bytes:
        return self.overlay_image(".png")

    def overlay_image(self, ext: str) -> bytes:
        """The last annotated image encoded as `ext` (".png", ".jpg"); b"" before the first."""
        with self._last_lock:
            last = self._last
        return b"" if last is None else self._render_overlay(last, ext)

    def overview(self) -> dict:
        """Everything the operator's page shows (edge.health.overview)."""
        from edge.health.overview import overview

        return overview(self)

    def _render_overlay(self, last, ext: str = ".png") -> bytes:
        """The annotated image of `last` ((frame, maps, ranking), outcome), encoded as `ext`."""
        (frame, maps, ranking), _ = last
        try:
            image = annotate(maps, ranking, self.ranking_params, frame.rgb)
        except Exception as exc:  # a drawing bug must not break the status page
            log.error("overlay failed: %s", exc)
            image = frame.rgb
        params = [cv2.IMWRITE_JPEG_QUALITY, 85] if ext == ".jpg" else []
        ok, data = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
        return data.tobytes() if ok else b""

    def metrics(self) -> str:
        return prometheus_text(self)

    def snapshot(self, reason: str, outcome: CycleOutcome | None = None) -> str:
        with self._last_lock:
            last = self._last
        frame = maps = None
        if last is not None:
            (frame, maps, _), last_outcome = last
            outcome = outcome or last_outcome
        result = (
            {}
            if outcome is None
            else {"error": outcome.error, "message": outcome.message, **vars(outcome.result)}
        )
        folder = self.snapshots.save(
            reason,
            None if frame is None else frame.rgb,
            None if maps is None else maps.boundaries,
            None if maps is None else maps.occlusions,
            result,
            public_config(self.config),  # viewers may fetch it: never the credential hashes
            b"" if last is None else self._render_overlay(last),
        )
        log.info("snapshot written to %s", folder)
        return str(folder)


def annotate(maps, ranking, params, rgb: np.ndarray) -> np.ndarray:
    """The last image as the model saw it, with boundaries, occluding sides, best candidate and grasp."""
    from edge.overlay import draw_overlay

    if maps is None or ranking is None:
        return rgb
    return draw_overlay(maps.model_rgb, maps.boundaries, maps.occlusions, ranking, params)


def prometheus_text(sup: Supervisor) -> str:
    """Prometheus exposition format (text 0.0.4), written by hand: a dozen lines need no client library."""
    s = sup.stats.summary()
    lines = [
        "# HELP binpick_up 1 while the appliance runs.",
        "# TYPE binpick_up gauge",
        f"binpick_up {1 if s['state'] == 'running' else 0}",
        "# HELP binpick_cycles_total Finished cycles, any outcome.",
        "# TYPE binpick_cycles_total counter",
        f"binpick_cycles_total {s['cycles']}",
        "# HELP binpick_cycle_errors_total Failed cycles by error code name.",
        "# TYPE binpick_cycle_errors_total counter",
    ]
    for name in sup.register_map.errors:
        if name != "ok":
            lines.append(f'binpick_cycle_errors_total{{error="{name}"}} {s["errors"].get(name, 0)}')
    lines += [
        "# HELP binpick_cycle_duration_milliseconds Cycle time percentiles over the last 500 cycles.",
        "# TYPE binpick_cycle_duration_milliseconds summary",
    ]
    for stage, p in sup.stats.percentiles().items():
        for q, quantile in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
            lines.append(
                f'binpick_cycle_duration_milliseconds{{stage="{stage}",quantile="{quantile}"}} {p[q]}'
            )
    camera = sup.camera.status() if sup.camera else {}
    regs = sup.bank.snapshot()
    lines += [
        "# HELP binpick_camera_reopens_total Times the camera was torn down and reopened.",
        "# TYPE binpick_camera_reopens_total counter",
        f"binpick_camera_reopens_total {camera.get('reopens', 0)}",
        "# HELP binpick_camera_corrupt_frames_total Frames that were not decodable images.",
        "# TYPE binpick_camera_corrupt_frames_total counter",
        f"binpick_camera_corrupt_frames_total {camera.get('corrupt_frames', 0)}",
        "# HELP binpick_plc_rejected_writes_total PLC writes rejected (read-only register or out of range).",
        "# TYPE binpick_plc_rejected_writes_total counter",
        f"binpick_plc_rejected_writes_total {sup.bank.rejected_writes}",
        "# HELP binpick_plc_refused_connections_total Modbus TCP connections refused by plc.allowed_clients.",
        "# TYPE binpick_plc_refused_connections_total counter",
        f"binpick_plc_refused_connections_total {sup.plc.gate.refused_connections}",
        "# HELP binpick_plc_refused_requests_total Writes of plc.readonly_clients refused.",
        "# TYPE binpick_plc_refused_requests_total counter",
        f"binpick_plc_refused_requests_total {sup.plc.gate.refused_requests}",
        "# HELP binpick_page_viewers Open live streams of the operator's page.",
        "# TYPE binpick_page_viewers gauge",
        f"binpick_page_viewers {sup.frames.viewers}",
        "# HELP binpick_result_sequence Sequence id of the last published result.",
        "# TYPE binpick_result_sequence gauge",
        f"binpick_result_sequence {regs['sequence_id']}",
        "# HELP binpick_pixel_mode 1 when running without calibration.",
        "# TYPE binpick_pixel_mode gauge",
        f"binpick_pixel_mode {int(sup.calibration.pixel_mode)}",
        "# HELP binpick_error_code Current error code register.",
        "# TYPE binpick_error_code gauge",
        f"binpick_error_code {regs['error_code']}",
    ]
    return "\n".join(lines) + "\n"


def _lap(stages: dict, name: str, t: float) -> float:
    now = time.monotonic()
    stages[name] = (now - t) * 1000.0
    return now
