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

import functools
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge.bin_model import BinMissing, BinModelError, BinStage, Reachable, load_bin_model
from edge.calibration_watch import CalibrationWatcher
from edge.camera import CameraError, CameraLost, CameraSource, open_camera
from edge.config import Config
from edge.depth_cue import DepthCueStage
from edge.health.history import CellHistory
from edge.health.live import FrameHub
from edge.health.overview import public_config
from edge.health.process_stats import read_process_stats
from edge.health.prometheus import prometheus_text
from edge.health.sd_notify import Notifier
from edge.health.snapshots import FailureStreaks, SnapshotRing, save_cycle_snapshot
from edge.health.stats import CycleStats
from edge.inference.base import InferenceError
from edge.log_limit import LOG_INTERVAL_S, HostLogLimit
from edge.plc.bank import PublishedResult, RegisterBank
from edge.plc.register_map import RegisterMap
from edge.plc.service import PlcService, os_reason
from edge.ranking import PlannedGrasp, RankingParams, plan_grasp, plan_raised_grasp
from edge.ranking.pick_feedback import FailedPickMemory
from edge.ranking.raised import raised_ranking
from edge.suction_stage import SuctionStage, floor_feet, surface_points

if TYPE_CHECKING:
    from collections.abc import Callable

    from edge.bin_model import BinView
    from edge.camera import Frame
    from edge.inference.predictor import Maps, Predictor
    from edge.ranking import Ranking
    from edge.ranking.suction import SuctionPlacer, SurfacePoints

    # a cycle's (frame, maps, ranking): maps and ranking None where the cycle failed before them
    CycleContext = tuple[Frame, Maps | None, Ranking | None]

log = logging.getLogger("binpick")
FAILED_CYCLE_PAUSE_S = 0.5  # free-run: pause after a failed cycle (empty folder, dead camera...)
# At stop, the PLC servers answer this long after the last answer (ready 0, error not_running, a
# trigger answered), so that a PLC polling every 100 ms reads them before the connection closes.
STOP_LINGER_S = 1.0


class StartupError(RuntimeError):
    """The appliance cannot start (message says what to fix)."""


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


def load_bin_stage(cfg: Config) -> BinStage | None:
    """The commissioned bin (`[bin] enabled`), or None; StartupError naming what is wrong."""
    if not cfg.bin.enabled:
        return None
    try:
        return BinStage(load_bin_model(cfg.bin.model), cfg.bin.settings())
    except BinModelError as exc:
        raise StartupError(str(exc)) from exc


def load_predictor(cfg: Config) -> Predictor:
    """The model on its backend; StartupError naming what is wrong (a precision this CPU lacks,
    bf16 on an int8 model, a file the backend cannot read...)."""
    from edge.inference.predictor import Predictor

    try:
        return Predictor(cfg.inference, (cfg.camera.width, cfg.camera.height))
    except InferenceError as exc:
        raise StartupError(str(exc)) from exc


def require_depth(camera: CameraSource) -> None:
    """The model takes depth: refuse a source that can be seen not to deliver any."""
    try:
        camera.require_depth()
    except CameraError as exc:
        raise StartupError(str(exc)) from exc


def check_start(cfg: Config) -> list[str]:
    """What the start would refuse, found without starting (`binpick run --check-config`, the
    installer's gate): the bin stage and the model are built as `open_parts` builds them and
    released; a source that holds no device (a replay folder, the simulated bin) is opened to see
    whether it delivers the depth a depth model needs. A camera device is not opened, since the
    running appliance may hold it: the returned notes say what was not tried."""
    load_bin_stage(cfg)
    predictor = load_predictor(cfg)
    try:
        uses_depth = predictor.info.uses_depth
    finally:
        predictor.backend.close()
    camera = open_camera(cfg.camera)
    if camera.holds_device:
        return [f"camera.source = {cfg.camera.source!r} not opened (the running appliance may hold it)"]
    try:
        camera.open()
        if uses_depth:
            require_depth(camera)
    except CameraError as exc:
        raise StartupError(str(exc)) from exc
    finally:
        camera.close()
    return []


class Supervisor:
    """The appliance: its parts, the cycle thread, and what the status page and PLC read.

    Seams, for tools that run the real cycle on other parts (the simulated cell, benchmarks,
    tests): `camera` (else opened from `[camera]`), `ranking_params` (else `[ranking]`; change
    them between cycles with `use_ranking_params`) and `bank`, the result sink the PLC servers
    serve (else a new `RegisterBank` over `[plc] registers`)."""

    def __init__(
        self,
        config: Config,
        print_lines: bool = False,
        max_cycles: int | None = None,
        *,
        camera: CameraSource | None = None,
        ranking_params: RankingParams | None = None,
        bank: RegisterBank | None = None,
    ):
        self.config = config
        self.print_lines = print_lines
        self.max_cycles = max_cycles
        self.stats = CycleStats()
        self.notifier = Notifier()
        self.stop_event = threading.Event()
        self.done_event = threading.Event()
        if bank is None:
            register_map = RegisterMap.load(config.plc.registers)
            bank = RegisterBank(register_map, triggered=config.appliance.mode == "triggered")
        self.register_map: RegisterMap = bank.map
        self.bank = bank
        self.snapshots = SnapshotRing(config.health.snapshot_dir, config.health.snapshot_keep)
        self.camera: CameraSource | None = camera
        self.predictor = None
        self.calibration = CalibrationWatcher(
            config.calibration.file, config.calibration.required, config.calibration.cell
        )
        self.ranking_params: RankingParams = ranking_params or config.ranking.params()
        self.depth_cue = DepthCueStage.from_config(config.inference)  # edge/depth_cue.py
        self.suction = SuctionStage.from_config(config.suction)  # where the cup seals (edge/suction_stage.py)
        self.bin: BinStage | None = None  # [bin] enabled: loaded by open_parts (edge/bin_model)
        feedback = config.pick_feedback
        self.failed_picks = FailedPickMemory(feedback.forget_after_cycles, feedback.radius_px)
        self.status_server = None
        # the operator page's picks, charts and error log
        self.history = CellHistory(self.register_map.pick_outcome)
        # A cycle error that repeats every cycle (a PLC triggering in idle mode every scan, a camera
        # that stays lost) is logged once a minute per error: the PLC and the page see every one.
        self._error_log = HostLogLimit()
        self.frames = FrameHub(lambda: self.overlay_image(".jpg"))  # the page's live image
        self.stall_limit_s = max(15.0, 3 * config.camera.timeout_s)  # no cycle progress this long = hung
        self.plc = PlcService(self.bank, config.plc, alive=self.cycle_alive)
        self._cycle_thread: threading.Thread | None = None
        self._progress_mono = time.monotonic()
        self._stage, self._stage_mono = "starting", time.monotonic()  # where the cycle thread is, since when
        self._last = None  # (rgb, maps, ranking, outcome) of the last cycle, for overlays and snapshots
        self._last_lock = threading.Lock()
        # which failed cycles get a snapshot: a streak's first, then after 1, 2, 4... minutes
        self._failure_snapshots = FailureStreaks(config.health.snapshot_min_interval_s)
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
            except OSError as exc:  # like a PLC link: a configured part that cannot start stops the start
                raise StartupError(
                    f"status page cannot listen on {cfg.health.http_host}:{cfg.health.http_port} "
                    f"(health.http_host, health.http_port): {os_reason(exc)}"
                ) from exc
        self.bank.mark_initialised(self.predictor.model_id)
        self.stats.state = "running"
        self._cycle_thread = threading.Thread(target=self._cycle_loop, name="cycle", daemon=True)
        self._cycle_thread.start()
        self.notifier.ready(f"running ({cfg.appliance.mode})")

    def open_parts(self) -> None:
        """Camera, model and ranking: everything a cycle needs (no servers, no threads)."""
        cfg = self.config
        if self.camera is None:
            self.camera = open_camera(cfg.camera)
        try:
            self.camera.open()
        except CameraError as exc:
            raise StartupError(str(exc)) from exc
        self.refresh_camera_ok()
        if cfg.inference.backend in ("tensorrt", "auto"):
            # A first TensorRT engine build can take minutes on a Jetson: ask systemd for time.
            self.notifier.notify("EXTEND_TIMEOUT_USEC=900000000", "STATUS=loading the model (TensorRT build)")
        try:
            stage = load_bin_stage(cfg)
            if stage is not None:  # else a stage given by `use_bin` before stays (the seam)
                self.bin = stage
            self.predictor = load_predictor(cfg)
            if self.predictor.info.uses_depth:
                require_depth(self.camera)
        except StartupError:
            self.camera.close()
            raise
        log.info("model %s on %s", cfg.inference.model, self.predictor.describe())
        if self.calibration.pixel_mode:
            log.warning("no calibration: running in PIXEL MODE (x, y and extents in pixels, z = 0)")
        self.bank.set_flag("pixel_mode", self.calibration.pixel_mode)

    def use_ranking_params(self, params: RankingParams) -> None:
        """Rank with `params` from the next cycle on (the simulated cell sizes `max_area` per pile)."""
        if not isinstance(params, RankingParams):
            raise ValueError(f"params: expected a RankingParams, got {type(params).__name__}")
        self.ranking_params = params

    def use_bin(self, stage: BinStage | None) -> None:
        """Observe the bin with `stage` from the next cycle on (None: no bin model); the simulated
        cell commissions one per pile."""
        if stage is not None and not isinstance(stage, BinStage):
            raise ValueError(f"stage: expected a BinStage, got {type(stage).__name__}")
        self.bin = stage

    def cycle_once(self, request_id: int = 0) -> CycleOutcome:
        """One cycle in the caller's thread (benchmarks, tools); the loop uses the same path."""
        outcome = self._guarded_cycle(request_id)
        self._finish(outcome)
        return outcome

    def run(self) -> int:
        """Block until SIGTERM/SIGINT (via `stop`) or `max_cycles`; feed systemd meanwhile.

        A cycle seen stuck (`cycle_alive` turns false) is said once in the journal at ERROR,
        naming its stage and for how long, and in STATUS= at once and until it moves again
        (which is logged too); the watchdog's pings stop meanwhile."""
        interval = self.notifier.watchdog_interval_s
        next_status = 0.0
        stuck_in = None  # the stage the cycle was seen stuck in (None: it moves)
        while not self.stop_event.wait(min(interval or 1.0, 1.0)):
            now = time.monotonic()
            alive = self.cycle_alive()
            if interval and alive:
                self.notifier.watchdog()
            if not alive and stuck_in is None:
                stuck_in = self._stage
                log.error(
                    "cycle stuck in %s for %.0f s (the limit is %.0f s): the PLC's heartbeat is frozen%s",
                    stuck_in, now - self._stage_mono, self.stall_limit_s,
                    ", and systemd's watchdog is no longer fed (systemd restarts the service after "
                    "WatchdogSec)" if interval else "",
                )  # fmt: skip
                next_status = now  # say it in STATUS= now, not within 5 s
            elif alive and stuck_in is not None:
                log.warning("cycle moves again (it was stuck in %s)", stuck_in)
                stuck_in = None
                next_status = now
            self.refresh_camera_ok()
            if now >= next_status:
                self.notifier.status(self._status_line())
                next_status = now + 5.0
        return 0

    def refresh_camera_ok(self) -> None:
        """`camera_ok` from the source's own state, between cycles as well as in them: a triggered
        cell read 0 until its first trigger (a PLC waiting for camera_ok never triggered), while a
        streaming camera's open only starts its thread, so the open alone says nothing. A source
        without a state of its own ("ready": a folder, the simulated bin) is fine once open; a
        streaming one once it delivers ("streaming"), not while "opening", "reopening" or "down"."""
        if self.camera is not None:
            state = self.camera.status().get("state")
            self.bank.set_flag("camera_ok", state in ("ready", "streaming"))

    def cycle_alive(self) -> bool:
        """The cycle thread made progress recently (feeds the systemd watchdog and the heartbeat)."""
        return time.monotonic() - self._progress_mono < self.stall_limit_s

    def stop(self) -> None:
        """Stop every part; returns within a few seconds even with a cycle in flight.

        The PLC sees it first: ready falls at once; the cycle in flight (up to 5 s) publishes
        its result as any other, and busy falls with it; then every trigger no cycle took is
        answered with error not_running (RegisterBank.stopping, close), and the servers answer
        for STOP_LINGER_S more before they close."""
        if self.stats.state in ("stopping", "stopped"):
            return
        self.stats.state = "stopping"
        self.notifier.stopping()
        self.bank.stopping()
        self.stop_event.set()
        self.bank.wake()
        if self._cycle_thread is not None:
            self._cycle_thread.join(timeout=5)
            if self._cycle_thread.is_alive():
                log.warning(
                    "stopping: the cycle in flight is given up, stuck in %s for %.0f s",
                    self._stage, time.monotonic() - self._stage_mono,
                )  # fmt: skip
        refused = self.bank.close()
        if refused is not None:
            log.info("trigger %d came while stopping: answered with error not_running", refused)
        if self.plc.serving:
            time.sleep(STOP_LINGER_S)
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
        line = f"cycles={s['cycles']} p50={p.get('p50', 0)}ms errors={errors} {s['last_error'][:80]}"
        if not self.cycle_alive():
            stuck_s = time.monotonic() - self._stage_mono
            line = f"STUCK in {self._stage} for {stuck_s:.0f} s; {line}"
        return line

    def _enter(self, stage: str) -> None:
        """The cycle thread is now in `stage` (a stuck cycle is reported by it)."""
        self._stage, self._stage_mono = stage, time.monotonic()

    # ------------------------------------------------------------------ the cycle
    def _cycle_loop(self) -> None:
        cfg = self.config
        triggered = cfg.appliance.mode == "triggered"
        while not self.stop_event.is_set():
            self._progress_mono = time.monotonic()
            if triggered:
                self._enter("waiting for a trigger")
                trigger = self.bank.wait_trigger(0.2)
                if trigger is None:
                    continue
                self.bank.accept_trigger(trigger)
                if self.stop_event.is_set():  # taken while stopping: answered, never dropped
                    self._finish(self._failure(trigger, "not_running", "the appliance is stopping", {}, None))
                    continue
                if self.bank.mode != "run":
                    self._finish(self._failure(trigger, "not_running", f"mode is {self.bank.mode}", {}, None))
                    continue
                outcome = self._guarded_cycle(trigger)
            else:
                if self.bank.mode != "run":
                    self._enter(f"{self.bank.mode} mode")
                    self.stop_event.wait(0.1)
                    continue
                started = time.monotonic()
                self.bank.begin_cycle()
                outcome = self._guarded_cycle(0)
            self._enter("recording the cycle")
            self._finish(outcome)
            if self.max_cycles is not None and self._cycles >= self.max_cycles:
                self.done_event.set()
                self.stop_event.set()
            elif not triggered:
                rest = cfg.appliance.cycle_period_s - (time.monotonic() - started)
                if outcome.error != "ok":  # a failing part is not retried in a tight loop
                    rest = max(rest, FAILED_CYCLE_PAUSE_S)
                self._rest(rest)

    def _rest(self, seconds: float) -> None:
        """Wait between free-run cycles, counting as progress: a cycle_period_s longer than the
        stall limit is a slow cadence, not a hung cycle (it had frozen the heartbeat and the
        systemd watchdog's pings in the wait)."""
        deadline = time.monotonic() + seconds
        self._enter("waiting for the next cycle")
        while not self.stop_event.is_set():
            self._progress_mono = now = time.monotonic()
            if now >= deadline:
                return
            self.stop_event.wait(min(deadline - now, self.stall_limit_s / 3))

    def _guarded_cycle(self, request_id: int) -> CycleOutcome:
        try:
            return self._cycle(request_id)
        except Exception as exc:  # the loop outlives any bug in one cycle; the snapshot keeps the evidence
            log.exception("cycle failed unexpectedly")
            return self._failure(request_id, "internal", f"{type(exc).__name__}: {exc}", {}, None)

    def _calibration_failure(
        self, request_id: int, stages: dict, file_only: bool = False
    ) -> CycleOutcome | None:
        """The failed outcome when the configuration requires a calibration that is missing or
        invalid (None: the cycle goes on). `file_only` (before the grab): only a missing or invalid
        file fails the cycle; a calibration set aside for the last frame's size is judged again on
        this cycle's frame, which may have its size again. The pixel_mode bit is not set here but
        published with this cycle's result (`PublishedResult.pixel_mode`): the registers still
        hold the previous cycle's grasp, in the previous calibration's units."""
        unusable = self.calibration.file_unusable if file_only else self.calibration.pixel_mode
        if self.calibration.required and unusable:
            return self._failure(request_id, "calibration_missing", self.calibration.error, stages, None)
        return None

    def _cycle(self, request_id: int) -> CycleOutcome:
        stages: dict[str, float] = {}
        t0 = time.monotonic()
        self._enter("capture")
        for sequence, outcome in self.bank.take_pick_outcomes():
            self.history.pick_outcome(sequence, outcome)
            if self.failed_picks.outcome(sequence, outcome == self.register_map.pick_outcome.failed):
                log.info("pick of sequence %d failed (PLC): its instance waits a few cycles", sequence)
        avoid = self.failed_picks.begin_cycle()
        self.calibration.refresh()
        failure = self._calibration_failure(request_id, stages, file_only=True)
        if failure is not None:
            return failure
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
        self.calibration.match_frame(frame.rgb.shape[1], frame.rgb.shape[0])
        failure = self._calibration_failure(request_id, stages)
        if failure is not None:
            return failure
        view = None
        self._enter("bin")
        if self.bin is not None:  # [bin]: where the bin is, its floor and fill level (edge/bin_model)
            try:
                view = self.bin.observe(frame.rgb, frame.depth_m)
            except BinMissing as exc:
                return self._failure(request_id, "bin_missing", str(exc), stages, None)
            height = view.fill.mean_height_mm
            self.bank.set_bin(view.fill.percent, 0.0 if height is None else height, view.empty)
            t = _lap(stages, "bin", t)
        self._enter("inference")
        try:
            maps = self.predictor.predict(frame.rgb, frame.depth_m)
        except InferenceError as exc:
            return self._failure(request_id, "model_error", str(exc), stages, (frame, None, None))
        t = _lap(stages, "inference", t)
        stages["preprocess"] = maps.preprocess_ms  # reported on its own, taken out of inference
        stages["inference"] -= maps.preprocess_ms
        self._enter("ranking")
        maps = self.depth_cue.apply(maps, frame.depth_m)  # [inference] depth_cue; off: unchanged
        ranking = self.predictor.rank(maps, self.ranking_params)  # on the GPU when the maps are there
        t = _lap(stages, "ranking", t)
        context = (frame, maps, ranking)
        if not ranking.candidates:
            return self._failure(
                request_id, "no_candidate", "no instance candidate in the image", stages, context
            )
        self._enter("geometry")
        cfg = self.config
        cal, scale = self.calibration.current, (maps.scale_x, maps.scale_y)
        keep = make_reachable = None
        labels_shape = None if ranking.labels is None else ranking.labels.shape
        points = surface_points(frame.depth_m, cal, labels_shape)  # with depth and a calibration
        feet = None if points is None else floor_feet(points, frame.depth_m.shape, cal, scale)
        foot = None if feet is None else feet.at
        if view is not None:  # off the floor, inside the bin, clear of its walls (where it stands)
            mm_per_px = None if cal is None else cal.mm_per_pixel_at
            keep = view.keep(ranking.labels, scale, self.bin.settings, mm_per_px, foot)

            @functools.cache  # one mask per cycle, shared by the network's and the depth's placers
            def make_reachable() -> Reachable:  # the seal check's cup centres, when it examines one
                feet_of = None if feet is None else feet.window
                return view.reachable(labels_shape, self.bin.settings, mm_per_px, feet_of)

        place = self.suction.placer(frame.depth_m, cal, ranking.labels, make_reachable, points)
        grasp = plan_grasp(
            ranking, maps.boundaries, maps.occlusions, self.ranking_params,
            calibration=cal, pick_height_mm=cfg.calibration.pick_height_mm,
            scale=scale, prefer_occluding_side=cfg.ranking.prefer_occluding_side,
            avoid=avoid, avoid_radius_px=self.failed_picks.radius_px,
            roi_polygon=None if view is None else view.interior, keep=keep, place=place,
            foot=foot,
        )  # fmt: skip
        chosen_from = ranking
        if grasp is None and view is not None and place is not None and points is not None:
            # no candidate of the network gave a grasp: what stands off the floor, by depth alone
            raised, place, grasp = self._raised_grasp(frame, view, points, scale, foot, avoid, make_reachable)
            chosen_from = raised
        label = None if grasp is None else chosen_from.candidates[grasp.candidate_index].label
        seal = self.suction.record(place, None if grasp is None else grasp.method, label)
        if grasp is None:
            n = len(ranking.candidates)
            return self._failure(
                request_id, "empty_roi", f"none of {n} candidates is inside the ROI", stages, context
            )
        result = published_result(request_id, grasp, len(ranking.candidates), pixel_mode=cal is None)
        t = _lap(stages, "geometry", t)
        result.latency_ms = (time.monotonic() - start) * 1000.0
        self._enter("publish")
        sequence = self.bank.publish(result)
        self.failed_picks.published(sequence, grasp.u, grasp.v)
        self.history.published(sequence, frame.rgb, grasp.u, grasp.v, grasp.score, grasp.major_px)
        _lap(stages, "publish", t)
        outcome = CycleOutcome(sequence, request_id, "ok", "", result, stages, self.calibration.pixel_mode)
        outcome.detail = {"pick": grasp.pixel_dict(), "method": grasp.method}
        # the ranking's label of the grasped candidate, for the overlay (None: a region of depth alone)
        outcome.detail["candidate_label"] = label if chosen_from is ranking else None
        if seal is not None:
            outcome.detail["suction"] = seal
        self._remember(context, outcome)
        return outcome

    def _raised_grasp(
        self,
        frame: Frame,
        view: BinView,
        points: Callable[[], SurfacePoints],
        scale: tuple[float, float],
        foot: Callable[[float, float], tuple[float, float]] | None,
        avoid: list[tuple[float, float]],
        make_reachable: Callable[[], Reachable] | None,
    ) -> tuple[Ranking, SuctionPlacer | None, PlannedGrasp | None]:
        """The grasp on a region of depth alone (`edge.ranking.raised`), with the ranking of
        those regions and the placer that placed it: the network's candidates gave none."""
        cal = self.calibration.current
        surface = points()
        h, w = surface.depth_mm.shape
        pts, measured, _ = surface.window(slice(0, h), slice(0, w))
        heights = np.where(measured, pts[..., 2], np.nan)
        off_floor, interior = view.raised_masks((h, w))
        centre = (frame.rgb.shape[1] / 2, frame.rgb.shape[0] / 2)
        mm_per_map_px = float(cal.mm_per_pixel_at(*centre)) * max(scale)
        radius_px = self.suction.params.cup_radius_mm / max(mm_per_map_px, 1e-9)
        raised = raised_ranking(off_floor, interior, heights, int(0.5 * math.pi * radius_px**2))
        if not raised.candidates:
            return raised, None, None
        place = self.suction.placer(frame.depth_m, cal, raised.labels, make_reachable, points)
        keep = view.keep(raised.labels, scale, self.bin.settings, cal.mm_per_pixel_at, foot)
        grasp = plan_raised_grasp(
            raised, place, self.ranking_params, calibration=cal,
            pick_height_mm=self.config.calibration.pick_height_mm, scale=scale, avoid=avoid,
            avoid_radius_px=self.failed_picks.radius_px, roi_polygon=view.interior, keep=keep, foot=foot,
        )  # fmt: skip
        return raised, place, grasp

    def _failure(
        self, request_id: int, error: str, message: str, stages: dict, context: CycleContext | None
    ) -> CycleOutcome:
        self._enter(f"reporting error {error}")
        code = self.register_map.error_code(error)
        result = PublishedResult(request_id, code, pixel_mode=self.calibration.pixel_mode)
        sequence = self.bank.publish(result)
        self.stats.set_error(f"{error}: {message}")
        if self._error_log.first(error, "cycle error"):
            level = logging.INFO if error == "not_running" else logging.WARNING  # the PLC's own choice
            suffix = " (this error is not logged again for %.0f s; the PLC and the page see each one)"
            log.log(level, "cycle error %s (%d): %s" + suffix, error, code, message, LOG_INTERVAL_S)
        else:
            log.debug("cycle error %s (%d): %s", error, code, message)
        outcome = CycleOutcome(
            sequence, request_id, error, message, result, stages, self.calibration.pixel_mode
        )
        if context is not None:
            self._remember(context, outcome)
        if (
            self.config.health.snapshot_on_failure
            and error != "not_running"
            and self._failure_snapshots.due(error, time.monotonic())
        ):
            self._failure_snapshot(error, outcome, context)
        return outcome

    def _failure_snapshot(self, error: str, outcome: CycleOutcome, context: CycleContext | None) -> None:
        """Save a failed cycle's snapshot; its lines (written, or not written: a full disk) are
        logged once a minute, repeats at DEBUG (the page's error log names each snapshot)."""
        try:
            name = os.path.basename(self.snapshot(f"failure-{error}", outcome, context))
        except OSError as exc:
            if self._error_log.first("snapshot", "not written"):
                suffix = " (not logged again for %.0f s)"
                log.error("failure snapshot not written: %s" + suffix, exc, LOG_INTERVAL_S)
            else:
                log.debug("failure snapshot not written: %s", exc)
            return
        outcome.detail["snapshot"] = name
        level = logging.INFO if self._error_log.first(error, "snapshot written") else logging.DEBUG
        log.log(level, "failure snapshot %s written in %s", name, self.snapshots.folder)

    def _finish(self, outcome: CycleOutcome) -> None:
        self._cycles += 1
        if outcome.error == "ok":
            self._failure_snapshots.ok()
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

    def _remember(self, context: CycleContext, outcome: CycleOutcome) -> None:
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
            "calibration": {
                "file": self.calibration.path,
                "error": self.calibration.error,
                "failed_checks": self.calibration.failed_checks,
            },
            "cycle_ms": self.stats.percentiles(),
            "camera": self.camera.status() if self.camera else {},
            "inference": self.predictor.describe() if self.predictor else {},
            "depth_cue": self.depth_cue.status(),
            "suction": self.suction.status(),
            "bin": None if self.bin is None or self.bin.last is None else self.bin.last.to_dict(),
            "plc": {
                **self.plc.state,
                "tcp_clients": self.plc.gate.state(),
                "rejected_writes": self.bank.rejected_writes,
                "last_rejection": self.bank.last_rejection,
                "ignored_pick_outcomes": self.bank.ignored_pick_outcomes,
                "dropped_pick_outcomes": self.bank.dropped_pick_outcomes,
            },
            "registers": self.bank.snapshot(),
            "failed_picks_avoided": [
                (round(x.u, 1), round(x.v, 1), x.cycles_left) for x in self.failed_picks.spots
            ],
            "snapshots": self.snapshots.list()[-5:],
            "process": read_process_stats().to_dict(),
            "config": self.config.source,
        }

    def last_outcome(self) -> CycleOutcome | None:
        """The last cycle's outcome that had an image (None before the first)."""
        with self._last_lock:
            last = self._last
        return None if last is None else last[1]

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

    def _render_overlay(self, last: tuple[CycleContext, CycleOutcome], ext: str = ".png") -> bytes:
        """The annotated image of `last` ((frame, maps, ranking), outcome), encoded as `ext`."""
        (frame, maps, ranking), outcome = last
        try:
            image = annotate(maps, ranking, self.ranking_params, frame.rgb, outcome)
        except Exception as exc:  # a drawing bug must not break the status page
            log.error("overlay failed: %s", exc)
            image = frame.rgb
        params = [cv2.IMWRITE_JPEG_QUALITY, 85] if ext == ".jpg" else []
        ok, data = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
        return data.tobytes() if ok else b""

    def metrics(self) -> str:
        return prometheus_text(self)

    def snapshot(
        self, reason: str, outcome: CycleOutcome | None = None, context: CycleContext | None = None
    ) -> str:
        """Save a cycle; returns the folder. Without `outcome` (on demand): the last cycle. With
        `outcome` (a failed cycle): that cycle's own `context` only, None when it got no image
        (`camera_lost`, `no_image`): then result.json names the last cycle that had one, whose
        pictures are not copied. The caller logs (the page's action line, `_failure_snapshot`)."""
        with self._last_lock:
            last = self._last
        if outcome is None:
            cycle, earlier = last, None
        else:
            cycle = None if context is None else (context, outcome)
            earlier = last if cycle is None else None
        folder = save_cycle_snapshot(
            self.snapshots, reason, cycle, outcome,
            public_config(self.config),  # viewers may fetch it: never the credential hashes
            b"" if cycle is None else self._render_overlay(cycle),
            earlier,
        )  # fmt: skip
        log.debug("snapshot written to %s", folder)
        return str(folder)


def annotate(
    maps: Maps | None, ranking: Ranking | None, params: RankingParams, rgb: np.ndarray, outcome: CycleOutcome
) -> np.ndarray:
    """The image as the model saw it, with boundaries, occluding sides, best candidate and the grasp
    the cycle published (where the robot was sent, which may not be the ranking's own; none if the
    cycle published nothing)."""
    from edge.overlay import PickMark, draw_overlay

    if maps is None or ranking is None:
        return rgb
    pick = outcome.detail.get("pick") if outcome.error == "ok" else None
    mark = None
    if pick is not None:
        mark = PickMark.from_camera(
            pick,
            (maps.scale_x, maps.scale_y),
            outcome.detail.get("method", ""),
            outcome.detail.get("candidate_label"),
        )
    return draw_overlay(maps.model_rgb, maps.boundaries, maps.occlusions, ranking, params, mark)


def published_result(
    request_id: int, grasp: PlannedGrasp, candidate_count: int, pixel_mode: bool
) -> PublishedResult:
    """The registers' view of a planned grasp (robot frame, or pixels in pixel mode, which the
    result carries so that the status bit changes with the words it describes)."""
    return PublishedResult(
        request_id, 0, grasp.x, grasp.y, grasp.z, grasp.angle, grasp.score, candidate_count,
        grasp.extent_major, grasp.extent_minor, pixel_mode=pixel_mode,
    )  # fmt: skip


def _lap(stages: dict, name: str, t: float) -> float:
    now = time.monotonic()
    stages[name] = (now - t) * 1000.0
    return now
