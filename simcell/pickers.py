"""Who decides where the cup goes: our appliance (its own cycle) or a depth-map baseline.

`AppliancePicker` starts the real `edge.supervisor.Supervisor` (the object `binpick run`
starts) in triggered mode, with a camera source that hands it the cell's current frame, and
asks for each grasp through the PLC handshake: in-process register writes on the same
`RegisterBank` the Modbus server serves, or, with `plc=True`, a real Modbus TCP client on
127.0.0.1. Either way the grasp comes back as the PLC would read it: robot millimetres from the
calibration file. Baselines map their pixel through the same calibration file and pick height.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge.calibration_file import Calibration, load_calibration
from edge.camera.base import CameraError, CameraSource, Frame, make_frame
from edge.ranking.pick_feedback import FailedPickMemory
from edge.suction_stage import SuctionStage, floor_feet, surface_points
from mikado.depth_noise import DepthNoise, degrade_depth
from simcell import baselines
from simcell.calibration import bin_floor_corners, write_calibration
from simcell.cell import Cell, Observation

if TYPE_CHECKING:
    from edge.config import Config

ROOT = Path(__file__).resolve().parents[1]
EMBEDDED_CONFIG = ROOT / "firmware_config" / "embedded.toml"
METHODS = ("ours", "ours_cue", "cue", "oracle", "planar", "highest", "random")
# The appliance with its depth cue ([inference] depth_cue, edge/depth_cue.py): fused with the
# network's occlusion map, or in its place.
CUE_METHODS = {"ours_cue": "fuse", "cue": "only"}
DEPTHS = ("stereo", "exact")


def sensor_depth(obs: Observation, cal: Calibration, depth: str, rng: np.random.Generator) -> np.ndarray:
    """The depth map a method gets this attempt: the simulator's ("exact"), or what a stereo or
    laser-triangulation camera makes of it ("stereo": noise growing with z², shadow holes beside
    edges, dropouts; `mikado.depth_noise`, one draw per attempt from the pile's own generator)."""
    if depth == "exact":
        return obs.depth_m
    return degrade_depth(obs.depth_m, float(cal.camera_matrix[0, 0]), DepthNoise(), rng)


def _cell_suction(cfg: Config, cup_radius_mm: float, suction: bool | None) -> None:
    """The configuration's [suction] for the cell: the cell's own cup, on or off when asked."""
    cfg.suction.cup_radius_mm = cup_radius_mm
    if suction is not None:
        cfg.suction.enabled = suction


class PickerError(RuntimeError):
    """The picker cannot run (model missing, appliance failed to start); message says what to fix."""


@dataclass
class Proposal:
    robot_mm: np.ndarray | None  # None: no grasp this cycle
    pixel: tuple[float, float] | None
    vision_ms: float
    message: str = ""
    overlay: np.ndarray | None = field(default=None, repr=False)
    method: str = ""  # the appliance's grasp rule (suction, suction_edge, raised, centroid...)


def default_model_path() -> Path:
    """The bundled model the appliance's embedded configuration names."""
    from edge.config import load_config

    return Path(load_config(EMBEDDED_CONFIG, check_files=False).inference.model)


def pick_feedback_memory(config: str | Path = EMBEDDED_CONFIG) -> FailedPickMemory:
    """The failed-pick memory the appliance configuration `config` sets ([pick_feedback]), for the
    methods that are not the appliance: every method of the cell gets the same memory."""
    from edge.config import ConfigError, load_config

    try:
        feedback = load_config(config, check_files=False).pick_feedback
    except ConfigError as exc:
        raise PickerError(str(exc)) from exc
    return FailedPickMemory(feedback.forget_after_cycles, feedback.radius_px)


AUTO_AREA_FACTOR = 1.5


def cell_max_area(cell: Cell, setting: float | str | None) -> float | None:
    """The ranking's max_area for this pile: "auto" = 1.5 x the largest product's flat image
    footprint, as an image fraction (the model may run at another resolution than the camera);
    a number is used as given; None keeps the appliance configuration's."""
    if setting is None:
        return None
    if setting == "auto":
        fraction = AUTO_AREA_FACTOR * cell.largest_product_px() / (cell.camera.width * cell.camera.height)
        return float(min(0.9, fraction))
    return float(setting)


class CellCamera(CameraSource):
    """A camera that delivers the frame the cell rendered last: RGB and the depth of the cell's
    depth camera (`depth_m`, set with the observation: stereo-noise or exact, see `sensor_depth`)."""

    name = "simcell"

    def __init__(self):
        self.observation: Observation | None = None
        self.depth_m: np.ndarray | None = None
        self._index = 0

    def open(self) -> None:
        pass

    def grab(self, timeout: float) -> Frame:
        if self.observation is None:
            raise CameraError("simcell: no frame rendered yet")
        self._index += 1
        return make_frame(self.observation.rgb, self._index, self.name, depth_m=self.depth_m)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppliancePicker:
    name = "ours"

    def __init__(
        self,
        model: str | Path | None,
        width: int,
        height: int,
        workdir: Path,
        pick_height_mm: float,
        plc: bool = False,
        threads: int = 0,
        config: str | Path = EMBEDDED_CONFIG,
        max_area: float | str | None = "auto",
        tta_views: int | None = None,
        depth: str = "stereo",
        depth_cue: str | None = None,
        bin_model: bool = False,
        cup_radius_mm: float = 7.5,
        bin_floor_tolerance_mm: float | None = None,
        suction: bool | None = None,
    ):
        """`config` is an appliance configuration whose ranking, inference and suction sections
        are used as they are (but `max_area`, see `cell_max_area`, `tta_views`, `depth_cue` ("off",
        "fuse", "only") and `suction` (the seal check on or off) when given); camera, calibration,
        PLC port, status page and the cup's radius are the cell's. `depth`: the depth camera the
        appliance gets with each frame (see `sensor_depth`)."""
        from edge.config import ConfigError, load_config

        try:
            cfg = load_config(config, check_files=False)
        except ConfigError as exc:
            raise PickerError(str(exc)) from exc
        model = Path(model) if model is not None else Path(cfg.inference.model)
        if not model.is_file():
            raise PickerError(f"{model}: model file not found (export one with `binpick export`)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.calibration_path = workdir / "simcell_calibration.json"
        self.max_area = max_area
        cfg.appliance.mode = "triggered"
        cfg.camera.width, cfg.camera.height = width, height
        cfg.inference.model = str(model)
        cfg.inference.threads = threads
        if tta_views is not None:
            cfg.inference.tta_views = tta_views
        if depth_cue is not None:
            cfg.inference.depth_cue = depth_cue
        if depth not in DEPTHS:
            raise PickerError(f"depth {depth!r}: expected stereo or exact")
        self.depth = depth
        cue = cfg.inference.depth_cue
        self.name = "ours" if cue == "off" else {"fuse": "ours_cue", "only": "cue"}[cue]
        if depth == "exact":  # an RGB-D model, the cue and the seal check all see the depth
            self.name += "_exact"
        cfg.calibration.file = str(self.calibration_path)
        cfg.calibration.required = True
        cfg.calibration.pick_height_mm = pick_height_mm
        cfg.plc.tcp_port = _free_port()
        cfg.health.http_enabled = False
        cfg.health.snapshot_on_failure = False
        cfg.health.snapshot_dir = str(workdir / "snapshots")
        # bin_model: the appliance models the bin (edge.bin_model, docs/bin.md), commissioned per
        # pile on the empty bin's frame with the bin floor's real corners as interior (outside the
        # frame where the camera sees part of the bin); the cup must stay clear of the walls'
        # inner faces (its radius plus 2 mm for the calibration's error). The simulated bin does
        # not move between commissioning and picking: no tracking.
        self.bin_model = bin_model
        cfg.bin.wall_clearance_mm = cup_radius_mm + 2.0
        cfg.bin.track = False
        if bin_floor_tolerance_mm is not None:
            cfg.bin.floor_tolerance_mm = bin_floor_tolerance_mm
        _cell_suction(cfg, cup_radius_mm, suction)
        if not cfg.suction.enabled:
            self.name += "_nofit"
        self.config = cfg
        self.plc = plc
        self._sup = None
        self._client = None
        self._trigger = 0
        self._last_sequence = 0  # of the last published grasp, for the pick outcome

    def start(self) -> None:
        from edge.plc.register_map import RegisterMapError
        from edge.plc.service import PlcStartError
        from edge.supervisor import StartupError, Supervisor

        self.camera = CellCamera()  # the cycle grabs the cell's current frame
        try:
            sup = Supervisor(self.config, camera=self.camera)
        except (StartupError, RegisterMapError) as exc:
            raise PickerError(f"the appliance did not start: {exc}") from exc
        try:
            sup.start()
        except (StartupError, PlcStartError, RegisterMapError) as exc:  # e.g. its Modbus port taken meanwhile
            sup.stop()
            raise PickerError(f"the appliance did not start: {exc}") from exc
        self._sup = sup
        self.map = sup.register_map
        self.model_id = sup.predictor.model_id
        if self.plc:
            from pymodbus.client import ModbusTcpClient

            self._client = ModbusTcpClient("127.0.0.1", port=self.config.plc.tcp_port, timeout=5)
            deadline = time.monotonic() + 10
            while not self._client.connect():
                if time.monotonic() > deadline:
                    raise PickerError(f"Modbus TCP on 127.0.0.1:{self.config.plc.tcp_port} did not answer")
                time.sleep(0.1)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._sup is not None:
            self._sup.stop()

    def bind(self, cell: Cell) -> None:
        """A new pile has a new (jittered) camera: write its calibration for the appliance."""
        write_calibration(cell, self.calibration_path)
        self.calibration = load_calibration(self.calibration_path)
        if self._sup is None:
            self.start()
            self._configured_params = self._sup.ranking_params
        self.noise_rng = np.random.default_rng([0x57E0, cell.seed])  # the depth camera's own draws
        self._sup.failed_picks.clear()  # a new pile: every sequence starts from a clean memory
        area = cell_max_area(cell, self.max_area)
        self._sup.use_ranking_params(
            self._configured_params if area is None else replace(self._configured_params, max_area=area)
        )
        if self.bin_model:
            self._commission_bin(cell)

    def _commission_bin(self, cell: Cell) -> None:
        """`binpick bin` for this pile: the empty bin's frame and its depth camera's map, the bin
        floor's corners as the interior (as `--polygon` takes them, outside the frame where they
        are: the frame's edge is no wall), the floor plane fitted on it."""
        from edge.bin_model import BinStage, commission_bin

        empty = cell.empty_view()
        rng = np.random.default_rng([0xB1, cell.seed])  # not the depth camera's own draws
        depth = sensor_depth(empty, self.calibration, self.depth, rng)
        model = commission_bin(empty.rgb, depth, bin_floor_corners(cell))
        self._sup.use_bin(BinStage(model, self.config.bin.settings()))

    def bin_state(self) -> dict | None:
        """The last cycle's fill level (%), bin_empty and interior mask; None without a bin model."""
        from edge.bin_model import interior_mask

        stage = None if self._sup is None else self._sup.bin
        if stage is None:
            return None
        view = stage.last
        inside = None if view is None else interior_mask(view.interior, view.floor.shape)
        return {
            "fill_percent": None if view is None else view.fill.percent,
            "empty": stage.tracker.empty,
            "inside": inside,
        }

    # ------------------------------------------------------------------ the PLC's side
    def _write(self, name: str, *values: int) -> None:
        """Write `values` from register `name` on (function 16 over Modbus when several)."""
        address = self.map[name].address
        if self._client is None:
            self._sup.bank.plc_write(address, list(values))
            return
        if len(values) == 1:
            response = self._client.write_register(address, values[0], device_id=1)
        else:
            response = self._client.write_registers(address, list(values), device_id=1)
        if response.isError():
            raise PickerError(f"Modbus write of {name} refused: {response}")

    def report(self, picked: bool) -> None:
        """The robot's vacuum sensor tells the PLC, the PLC tells the appliance (registers.toml)."""
        if self._last_sequence:
            outcome = self.map.pick_outcome.picked if picked else self.map.pick_outcome.failed
            self._write("pick_outcome", int(outcome), self._last_sequence)

    def _read(self) -> list[int]:
        if self._client is None:
            return self._sup.bank.read(0, self.map.size)
        response = self._client.read_holding_registers(0, count=self.map.size, device_id=1)
        if response.isError():
            raise PickerError(f"Modbus read refused: {response}")
        return response.registers

    def _float(self, words: list[int], name: str) -> float:
        a = self.map[name].address
        return self.map.words_to_float(words[a], words[a + 1])

    def propose(self, cell: Cell, obs: Observation, timeout: float = 120.0) -> Proposal:
        self.camera.observation = obs
        self.camera.depth_m = sensor_depth(obs, self.calibration, self.depth, self.noise_rng)
        self._trigger = self._trigger % 60000 + 1
        before = self._read()[self.map["sequence_id"].address]
        started = time.perf_counter()
        self._write("trigger_id", self._trigger)
        deadline = time.monotonic() + timeout
        busy = self.map.bit_mask("busy")
        a = {n: self.map[n].address for n in ("trigger_ack", "sequence_id", "status", "request_id")}
        while True:
            words = self._read()
            if (
                words[a["trigger_ack"]] == self._trigger
                and not words[a["status"]] & busy
                and words[a["sequence_id"]] != before
                and words[a["request_id"]] == self._trigger
            ):
                break
            if time.monotonic() > deadline:
                raise PickerError(f"trigger {self._trigger} not answered within {timeout:.0f} s")
            time.sleep(0.002)
        round_trip_ms = (time.perf_counter() - started) * 1000.0
        self._write("result_ack", words[a["sequence_id"]])
        # The appliance's own latency register; a failed cycle publishes none, then the
        # handshake's round trip stands in for it.
        latency = self._float(words, "latency") or round_trip_ms
        error = words[self.map["result_error"].address]
        self._last_sequence = 0 if error else words[a["sequence_id"]]
        # a grasp's cycle keeps its outcome just after publishing: wait for it, so that the rule
        # and the overlay are this cycle's
        method = "" if error else self._published_method(words[a["sequence_id"]])
        overlay = self._overlay()
        if error:
            name = self.map.error_name(error)
            return Proposal(None, None, latency, f"appliance error {name}", overlay)
        xyz = np.array([self._float(words, n) for n in ("x", "y", "z")])
        return Proposal(xyz, self.calibration.robot_to_pixel(xyz), latency, "", overlay, method)

    def _published_method(self, sequence: int, timeout: float = 5.0) -> str:
        """The grasp rule of the cycle that published `sequence`: the registers are written
        before the cycle keeps its outcome, so wait until the cycle has kept it (the page's live
        image, `FrameHub`, is told right after; "" if that never comes)."""
        deadline, seen = time.monotonic() + timeout, 0
        while True:
            published = self._sup.frames.wait(seen, max(0.0, deadline - time.monotonic()))
            if published.sequence == sequence:
                break
            if published.version == seen or time.monotonic() >= deadline:  # nothing new in time
                return ""
            seen = published.version
        last = self._sup.last_outcome()
        return "" if last is None or last.sequence != sequence else str(last.detail.get("method", ""))

    def _overlay(self) -> np.ndarray | None:
        png = self._sup.overlay_png()
        if not png:
            return None
        bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class RemembersFailedPicks:
    """The appliance's failed-pick memory (`edge.ranking.pick_feedback`) for the methods that are not the
    appliance, so that every method of the cell gets the same second chances."""

    memory: FailedPickMemory
    _last_pixel: tuple[float, float] | None = None

    def report(self, picked: bool) -> None:
        """What the robot's vacuum sensor said about the last proposal."""
        if not picked and self._last_pixel is not None:
            self.memory.failed_at(*self._last_pixel)


class BaselinePicker(RemembersFailedPicks):
    """A depth-map baseline, mapped to the robot through the same calibration file."""

    def __init__(
        self,
        kind: str,
        workdir: Path,
        pick_height_mm: float,
        seed: int = 0,
        cup_radius_mm: float = 7.5,
        memory: FailedPickMemory | None = None,
        depth: str = "stereo",
    ):
        """`depth`: "stereo" or "exact", see `sensor_depth`."""
        if depth not in DEPTHS:
            raise PickerError(f"depth {depth!r}: expected exact or stereo")
        self.depth = depth
        self.memory = memory or FailedPickMemory(0, 0.0)
        if kind not in ("planar", "highest", "random"):
            raise PickerError(f"unknown baseline {kind!r}; expected planar, highest or random")
        self.kind = kind
        self.name = kind if depth == "exact" or kind == "random" else f"{kind}_stereo"  # random: no depth
        self.pick_height_mm = pick_height_mm
        self.params = baselines.PlanarParams(cup_radius_mm=cup_radius_mm)
        workdir.mkdir(parents=True, exist_ok=True)
        self.calibration_path = workdir / f"simcell_calibration_{kind}.json"
        self.rng = np.random.default_rng([0xBA5E, seed])
        self.calibration: Calibration | None = None

    def bind(self, cell: Cell) -> None:
        write_calibration(cell, self.calibration_path)
        self.calibration = load_calibration(self.calibration_path)
        self.rng = np.random.default_rng([0xBA5E, cell.seed])
        self.noise_rng = np.random.default_rng([0x57E0, cell.seed])  # the sensor's own draws
        self.memory.clear()

    def propose(self, cell: Cell, obs: Observation) -> Proposal:
        cal = self.calibration
        depth = sensor_depth(obs, cal, self.depth, self.noise_rng)  # the sensor's work: outside vision time
        t0 = time.perf_counter()
        avoid, radius = self.memory.begin_cycle(), self.memory.radius_px
        if self.kind == "planar":
            pixel = baselines.planar_region(depth, cal, self.params, avoid, radius)
        elif self.kind == "highest":
            pixel = baselines.highest_point(depth, cal, avoid, radius)
        else:  # a random point needs no memory: it is somewhere else next time anyway
            pixel = baselines.random_point(depth, cal, self.rng)
        self._last_pixel = pixel
        robot = (
            None if pixel is None else np.asarray(cal.pixel_to_robot(*pixel, height_mm=self.pick_height_mm))
        )
        ms = (time.perf_counter() - t0) * 1000.0
        overlay = obs.rgb.copy()
        if cal.roi_polygon is not None:
            cv2.polylines(overlay, [np.round(cal.roi_polygon).astype(np.int32)], True, (0, 200, 255), 1)
        if pixel is not None:
            cv2.circle(overlay, (round(pixel[0]), round(pixel[1])), 5, (255, 40, 40), -1, cv2.LINE_AA)
        return Proposal(robot, pixel, ms, "" if pixel is not None else "no grasp found", overlay)

    def close(self) -> None:
        pass


class OraclePicker(RemembersFailedPicks):
    """The appliance's ranking on the simulator's exact boundary and occlusion maps.

    Not a method a cell can run: the ceiling of ours, i.e. what the ranking and the gripper
    achieve with a perfect network. It separates the network's errors from the rest of the
    chain (candidates, ranking, grasp point, suction) when reading the report.
    """

    name = "oracle"

    def __init__(
        self,
        workdir: Path,
        pick_height_mm: float,
        config: str | Path = EMBEDDED_CONFIG,
        max_area: float | str | None = "auto",
        memory: FailedPickMemory | None = None,
        depth: str = "stereo",
        cup_radius_mm: float = 7.5,
        suction: bool | None = None,
    ):
        """`depth` is the depth camera the seal check sees (`sensor_depth`), as the appliance's;
        `suction` overrides the configuration's [suction] enabled."""
        from edge.config import ConfigError, load_config

        try:
            cfg = load_config(config, check_files=False)
        except ConfigError as exc:
            raise PickerError(str(exc)) from exc
        if depth not in DEPTHS:
            raise PickerError(f"depth {depth!r}: expected stereo or exact")
        ranking = cfg.ranking
        self.depth = depth
        _cell_suction(cfg, cup_radius_mm, suction)
        self.suction = SuctionStage.from_config(cfg.suction)  # the appliance's seal check
        if not cfg.suction.enabled:
            self.name = "oracle_nofit"
        elif depth == "exact":
            self.name = "oracle_exact"
        self.memory = memory or FailedPickMemory(0, 0.0)
        self.max_area = max_area
        self.configured = ranking.params()
        self.prefer_occluding_side = ranking.prefer_occluding_side  # as the appliance chooses
        self.pick_height_mm = pick_height_mm
        workdir.mkdir(parents=True, exist_ok=True)
        self.calibration_path = workdir / "simcell_calibration_oracle.json"
        self.calibration: Calibration | None = None

    def bind(self, cell: Cell) -> None:
        write_calibration(cell, self.calibration_path)
        self.calibration = load_calibration(self.calibration_path)
        area = cell_max_area(cell, self.max_area)
        self.params = self.configured if area is None else replace(self.configured, max_area=area)
        self.noise_rng = np.random.default_rng([0x57E0, cell.seed])  # the depth camera's own draws
        self.memory.clear()

    def propose(self, cell: Cell, obs: Observation) -> Proposal:
        from edge.overlay import draw_overlay
        from edge.ranking import plan_grasp, rank
        from mikado.ground_truth import ground_truth

        cal = self.calibration
        depth = sensor_depth(obs, cal, self.depth, self.noise_rng) if self.suction.enabled else None
        t0 = time.perf_counter()
        boundaries, occlusions = ground_truth(obs.labels, obs.depth_m)
        y, z = boundaries.astype(np.float32), occlusions.astype(np.float32)
        ranking = rank(y, z, self.params, return_labels=True)
        points = surface_points(depth, cal, ranking.labels.shape)  # the ROI judged where points stand
        feet = None if points is None else floor_feet(points, depth.shape, cal, (1.0, 1.0))
        grasp = plan_grasp(
            ranking, y, z, self.params, calibration=cal, pick_height_mm=self.pick_height_mm,
            prefer_occluding_side=self.prefer_occluding_side,
            avoid=self.memory.begin_cycle(), avoid_radius_px=self.memory.radius_px,
            place=self.suction.placer(depth, cal, ranking.labels, points=points),
            foot=None if feet is None else feet.at,
        )  # fmt: skip
        pixel = None if grasp is None else (grasp.u, grasp.v)
        self._last_pixel = pixel
        robot = None if grasp is None else np.array([grasp.x, grasp.y, grasp.z])
        ms = (time.perf_counter() - t0) * 1000.0
        overlay = draw_overlay(obs.rgb, y, z, ranking, self.params)
        return Proposal(robot, pixel, ms, "" if pixel is not None else "no candidate in the ROI", overlay)

    def close(self) -> None:
        pass


# Every method the cell runs through its loop (no shared base class: each keeps its own state).
Picker = AppliancePicker | BaselinePicker | OraclePicker
