"""The appliance configuration: one TOML file, validated here and nowhere else.

Each section is a dataclass; the field types and the `CHOICES`/`RANGES` tables below are the
whole schema. `load_config` rejects unknown keys, wrong types, values out of range and missing
files with one message naming the file, the key, the value and what was expected, so a typo in
the field never becomes a traceback from deep inside a camera driver.
Relative paths are resolved against the configuration file's folder.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge import toml_text
from edge.bin_model.stage import BinSettings
from edge.calibration_file import CELL_NAME, CELL_NAME_HINT
from edge.ranking import RankingParams
from edge.ranking.suction import SuctionParams


class ConfigError(ValueError):
    """Invalid configuration; the message names the file, key, value and the expectation."""


@dataclass
class ApplianceSection:
    name: str = "binpick"
    mode: str = "free-run"  # or "triggered": one cycle per PLC trigger
    cycle_period_s: float = 0.0  # free-run: minimum time between cycle starts
    log_level: str = "INFO"


@dataclass
class CameraSection:
    source: str = "simulated"  # simulated | opencv | folder | genicam | realsense | orbbec
    uri: str = ""  # opencv: device index, /dev/videoN, GStreamer pipeline, rtsp:// or http:// URL, video file
    folder: str = ""  # folder: images replayed in name order
    pattern: str = "*.png"
    loop: bool = True
    width: int = 512
    height: int = 512
    preset: str = "mikado+"  # simulated: Mikado preset
    seed: int = 0  # simulated: first pile's seed (one new pile per frame)
    cti: str = ""  # genicam: GenTL producer (.cti) file
    serial: str = ""  # genicam, realsense, orbbec: camera serial number ("" = first found)
    # Depth with each frame (docs/appliance.md "Depth"): folder pairs NAME.png with
    # NAME<depth_suffix>.png|.npy|.exr ("" = no depth); a 16-bit PNG's unit is depth_unit_mm.
    depth_suffix: str = "_depth"
    depth_unit_mm: float = 1.0
    simulated_depth: str = "stereo"  # simulated: stereo (a depth camera's noise and holes) | exact | none
    timeout_s: float = 2.0  # no frame for this long = source lost, torn down and reopened
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0


@dataclass
class InferenceSection:
    model: str = "../models/bicameral_f25_rgb.onnx"
    backend: str = "onnxruntime"  # onnxruntime | openvino | tensorrt | torch | torch-cuda | auto
    device: str = "cpu"  # cpu | cuda | auto (torch-cuda: cuda or auto)
    threads: int = 0  # 0 = physical cores
    # Dynamic-size models: the camera frame is resized by this factor before inference, so that
    # products span about as many pixels as in the training scenes (see docs/appliance.md).
    input_scale: float = 1.0
    # Test-time augmentation: the maps are averaged over this many views of the frame (1 = the
    # frame only, 2 = and its mirror image, 4 = and its vertical and double flips): more robust
    # boundaries for that many inferences per cycle (see docs/appliance.md).
    tta_views: int = 1
    fp16: bool = False  # tensorrt: build an fp16 engine; torch-cuda: run in fp16 (else fp32)
    # openvino: precision of what is not int8 in the model: fp32, bf16 (CPUs with BF16 only) or auto
    # (bf16 where the CPU has it). An int8 model is a file of its own (binpick quantize).
    precision: str = "fp32"
    torch_checkpoint: str = ""  # torch (development) and torch-cuda (GPU servers): training checkpoint
    # torch-cuda: compile the network (torch.compile, Inductor's fused kernels) before capturing its
    # CUDA graph: 9-19 s more at start, 1.75-1.9x faster inference on an H100 (docs/gpu.md).
    torch_compile: bool = False
    # The geometric occlusion cue from the frame's depth (edge/depth_cue.py): "off", "fuse" (with the
    # network's occlusion map by depth_cue_fusion) or "only" (the cue replaces it).
    depth_cue: str = "off"
    depth_cue_fusion: str = "mean"  # mean: (1 - w) Z + w cue | max
    depth_cue_weight: float = 0.5
    depth_cue_step_mm: float = 3.0  # smallest depth step that is an occlusion
    depth_cue_boundaries: bool = True  # also raise the boundary map at every depth step


@dataclass
class RankingSection:
    # The defaults are the ranking's own (edge.ranking.RankingParams).
    alpha: float = RankingParams.alpha
    beta: float = RankingParams.beta
    min_area: float = RankingParams.min_area
    max_area: float = RankingParams.max_area
    patch: int = RankingParams.patch
    w1: float = RankingParams.w1
    w2: float = RankingParams.w2
    margin: float = RankingParams.margin
    score: str = RankingParams.score  # "strict", "contour" or "thesis" (docs/hotpath.md, "Score")
    # Not a ranking parameter: pick first, in rank order, the candidates with occluding-side
    # evidence on their own contour (edge.ranking.occluding_side); false = the plain ranking's order.
    # On by default: a cell file written by hand without [ranking] gets what the shipped ones set
    # (the plain order picks floor gaps, docs/simcell.md "Why the floor wins").
    prefer_occluding_side: bool = True

    def params(self) -> RankingParams:
        """This section as the parameters `edge.ranking.rank` takes."""
        values = dataclasses.asdict(self)
        values.pop("prefer_occluding_side")
        return RankingParams(**values)


@dataclass
class CalibrationSection:
    file: str = ""  # "" = pixel mode
    required: bool = False  # true: a missing/invalid calibration fails every cycle (error 5)
    pick_height_mm: float = 0.0
    # The cell this appliance serves, as `binpick calibrate --cell` names it: a calibration file
    # written for another cell is refused ("" = any cell).
    cell: str = ""


@dataclass
class PlcSection:
    registers: str = "registers.toml"
    tcp_enabled: bool = True
    tcp_host: str = "127.0.0.1"
    tcp_port: int = 5020
    # A Modbus TCP connection that sends nothing for this long is closed (a dead or stuck peer frees
    # its slot; a PLC's driver reconnects at its next request). Longer than any poll of a PLC that
    # watches the heartbeat; raise it for a PLC that connects once and polls only on a trigger.
    tcp_idle_timeout_s: float = 120.0
    rtu_enabled: bool = False
    rtu_port: str = "/dev/ttyUSB0"
    rtu_device_id: int = 1
    rtu_baudrate: int = 19200
    rtu_parity: str = "N"
    rtu_stopbits: int = 1
    rtu_bytesize: int = 8
    heartbeat_period_s: float = 0.5
    result_ttl_s: float = 0.0  # > 0: result_valid falls when the result is older than this
    # Modbus TCP allow-list (addresses or CIDR ranges): when either list is non-empty, hosts in
    # allowed_clients read and write, hosts in readonly_clients only read, every other host is
    # refused at connect (logged, rate-limited). Both empty: any host (the loopback default).
    # The RTU line is not concerned.
    allowed_clients: list[str] = field(default_factory=list)
    readonly_clients: list[str] = field(default_factory=list)


@dataclass
class PickFeedbackSection:
    # After the PLC reports a failed pick (registers pick_outcome / pick_outcome_id), offer other
    # instances than the failed one for this many cycles (0 = ignore the reports).
    forget_after_cycles: int = 3
    radius_px: float = 12.0  # camera pixels: grasps this close to a failed one are avoided too


@dataclass
class BinSection:
    """The bin model (edge.bin_model, docs/bin.md): off until a bin is commissioned."""

    enabled: bool = False
    model: str = ""  # the bin model file `binpick bin` writes
    # pixel mode's interior (camera px, [[u, v], ...]) for `binpick bin` without a calibration ROI
    polygon: list[list[float]] = field(default_factory=list)
    # The defaults are the stage's own (edge.bin_model.stage.BinSettings).
    track: bool = BinSettings.track  # locate the bin every cycle (false: it never moves)
    floor_tolerance_mm: float = (
        BinSettings.floor_tolerance_mm
    )  # depth: this close to the floor plane is floor
    max_floor_share: float = BinSettings.max_floor_share  # a candidate more on the floor is dropped
    wall_clearance_mm: float = BinSettings.wall_clearance_mm  # calibrated: gripper radius + margin to a wall
    wall_clearance_px: float = BinSettings.wall_clearance_px  # pixel mode: the same in camera pixels
    empty_below_percent: float = BinSettings.empty_below_percent  # fill level under which the bin is empty
    # ... and no connected product region this large (percent of the interior, a few px inside its
    # outline): one small product; 0 turns this rule off
    empty_max_region_percent: float = BinSettings.empty_max_region_percent
    empty_cycles: int = BinSettings.empty_cycles  # consecutive cycles under it before bin_empty is set
    min_correlation: float = BinSettings.min_correlation  # rim registration: below this, bin_missing
    max_shift_px: float = BinSettings.max_shift_px  # rim registration: a larger shift is bin_missing

    def settings(self) -> BinSettings:
        """The values the per-cycle stage uses."""
        values = dataclasses.asdict(self)
        for key in ("enabled", "model", "polygon"):
            values.pop(key)
        return BinSettings(**values)


@dataclass
class SuctionSection:
    """Where the suction cup seals (edge.ranking.suction, docs/hotpath.md "Where the cup seals"):
    each examined candidate's surface from the depth map, the grasp moved to where the cup's disc
    lies on it, flat and level enough; candidates without such a place go after those with one.
    Needs a camera with depth and a calibration (intrinsics, bin floor); off while in pixel mode."""

    enabled: bool = False
    # The defaults are the core's own (edge.ranking.suction.SuctionParams).
    cup_radius_mm: float = SuctionParams.cup_radius_mm  # the cup's sealing lip
    max_tilt_deg: float = SuctionParams.max_tilt_deg  # the surface under the cup, from the bin floor
    max_residual_mm: float = SuctionParams.max_residual_mm  # rms off a plane under the cup
    min_clearance_mm: float = SuctionParams.min_clearance_mm  # the cup this far inside the sealable area
    max_candidates: int = SuctionParams.max_candidates  # examined per cycle

    def params(self) -> SuctionParams:
        values = dataclasses.asdict(self)
        values.pop("enabled")
        return SuctionParams(**values)


@dataclass
class HealthSection:
    http_enabled: bool = True
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    snapshot_dir: str = "../out/snapshots"
    snapshot_keep: int = 50
    snapshot_on_failure: bool = True
    snapshot_min_interval_s: float = 5.0  # at most one failure snapshot per interval
    # Who may open the status page ("viewer") and act on it ("operator": snapshots, later actions).
    # users: "NAME:ROLE:HASH" for HTTP basic auth; tokens: "NAME:ROLE:HASH" for
    # "Authorization: Bearer <token>" (a Prometheus scraper). HASH comes from
    # `binpick hash-password`; there is no default password. A bind beyond loopback needs one.
    users: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


@dataclass
class Config:
    appliance: ApplianceSection = field(default_factory=ApplianceSection)
    camera: CameraSection = field(default_factory=CameraSection)
    inference: InferenceSection = field(default_factory=InferenceSection)
    ranking: RankingSection = field(default_factory=RankingSection)
    calibration: CalibrationSection = field(default_factory=CalibrationSection)
    plc: PlcSection = field(default_factory=PlcSection)
    pick_feedback: PickFeedbackSection = field(default_factory=PickFeedbackSection)
    bin: BinSection = field(default_factory=BinSection)
    suction: SuctionSection = field(default_factory=SuctionSection)
    health: HealthSection = field(default_factory=HealthSection)
    source: str = ""  # the file it came from

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


CHOICES: dict[str, tuple] = {
    "appliance.mode": ("free-run", "triggered"),
    "appliance.log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "camera.source": ("simulated", "opencv", "folder", "genicam", "realsense", "orbbec"),
    "camera.simulated_depth": ("stereo", "exact", "none"),
    "inference.depth_cue": ("off", "fuse", "only"),
    "inference.depth_cue_fusion": ("mean", "max"),
    "inference.backend": ("onnxruntime", "openvino", "tensorrt", "torch", "torch-cuda", "auto"),
    "inference.precision": ("fp32", "bf16", "auto"),
    "inference.device": ("cpu", "cuda", "auto"),
    "inference.tta_views": (1, 2, 4),
    "plc.rtu_parity": ("N", "E", "O"),
    "plc.rtu_stopbits": (1, 2),
    "plc.rtu_bytesize": (7, 8),
}
RANGES: dict[str, tuple[float, float]] = {
    "appliance.cycle_period_s": (0, 3600),
    "camera.width": (16, 16384),
    "camera.height": (16, 16384),
    "camera.timeout_s": (0.05, 600),
    "camera.backoff_initial_s": (0.01, 600),
    "camera.backoff_max_s": (0.01, 3600),
    "inference.threads": (0, 1024),
    "inference.input_scale": (0.1, 4),
    "inference.depth_cue_weight": (0, 1),
    "inference.depth_cue_step_mm": (0.1, 1000),
    "camera.depth_unit_mm": (1e-6, 1000),
    "camera.seed": (0, 2**63 - 1),  # the simulated pile's generator takes a non-negative int64
    "calibration.pick_height_mm": (-500, 1000),  # the calibration wizard's range for the pick offset
    "plc.tcp_port": (1, 65535),
    "plc.tcp_idle_timeout_s": (5, 86400),
    "plc.rtu_device_id": (1, 247),
    "plc.rtu_baudrate": (300, 4_000_000),
    "plc.heartbeat_period_s": (0.05, 1.0),  # the heartbeat must count at >= 1 Hz
    "plc.result_ttl_s": (0, 86400),
    "pick_feedback.forget_after_cycles": (0, 1000),
    "pick_feedback.radius_px": (0, 1e5),
    "health.http_port": (1, 65535),
    "health.snapshot_keep": (1, 100000),
    "health.snapshot_min_interval_s": (0, 86400),
    "bin.floor_tolerance_mm": (0, 1000),
    "bin.max_floor_share": (0, 1),
    "bin.wall_clearance_mm": (0, 1000),
    "bin.wall_clearance_px": (0, 10000),
    "bin.empty_below_percent": (0, 100),
    "bin.empty_max_region_percent": (0, 100),
    "bin.empty_cycles": (1, 1000),
    "bin.min_correlation": (0, 1),
    "bin.max_shift_px": (0, 10000),
    "suction.cup_radius_mm": (0.5, 200),
    "suction.max_tilt_deg": (1, 89),
    "suction.max_residual_mm": (0.01, 100),
    "suction.min_clearance_mm": (0, 100),
    "suction.max_candidates": (1, 1000),
}
# Float keys where an infinite value means something ("no upper bound"); every other float must be
# finite, so a NaN never reaches a cycle that would fail on it every time.
INFINITE_ALLOWED = ("ranking.max_area",)
# Keys holding paths, resolved against the configuration file's folder ("" stays "").
PATH_KEYS = (
    "camera.folder",
    "camera.cti",
    "inference.model",
    "inference.torch_checkpoint",
    "calibration.file",
    "plc.registers",
    "health.snapshot_dir",
    "bin.model",
)


def _expected(tp: type | types.GenericAlias, value: object = None, allow_inf: bool = False) -> str:
    number = "a number"
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # a number, NaN or beyond a float
        number = "a number that is not NaN (inf: no bound)" if allow_inf else "a finite number"
    names = {int: "an integer", float: number, str: "a string", bool: "true or false"}
    if tp == list[list[float]]:
        return "a list of [u, v] pairs of finite numbers"
    return names.get(tp, "a list of strings" if tp == list[str] else str(tp))


def _number(x: object, allow_inf: bool = False) -> bool:
    """An int or float (not a bool: TOML's true is no number), finite unless `allow_inf`; NaN never."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        x = float(x)
    except OverflowError:  # an integer beyond any float (TOML integers have no bound in Python)
        return False
    return not math.isnan(x) and (allow_inf or not math.isinf(x))


# `value` is a raw TOML value (any TOML type); the result has the type `tp` names.
def _coerce(where: str, value: Any, tp: type | types.GenericAlias, allow_inf: bool = False) -> Any:
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = _number(value, allow_inf)
        value = float(value) if ok else value
    elif tp == list[str]:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif tp == list[list[float]]:
        ok = isinstance(value, list) and all(
            isinstance(p, list) and len(p) == 2 and all(_number(x) for x in p) for p in value
        )
        value = [[float(x) for x in p] for p in value] if ok else value
    else:
        ok = isinstance(value, tp)
    if not ok:
        raise ConfigError(f"{where} = {value!r}: expected {_expected(tp, value, allow_inf)}")
    return value


def _bound(x: float) -> str:
    """A range limit as written in RANGES: ints exactly (2**63 - 1 is no 9.22337e+18), floats short."""
    return str(x) if isinstance(x, int) else f"{x:g}"


def _section(path: Path, name: str, cls: type, raw: object) -> object:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [{name}] must be a table, got {raw!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{path}: unknown key '{name}.{key}' (known keys: {', '.join(sorted(known))})")
    values = {}
    for key, value in raw.items():
        dotted = f"{name}.{key}"
        where = f"{path}: {dotted}"
        tp = hints[key]
        if isinstance(tp, types.UnionType):
            tp = next(t for t in typing.get_args(tp) if t is not type(None))
        value = _coerce(where, value, tp, allow_inf=dotted in INFINITE_ALLOWED)
        if dotted in CHOICES and value not in CHOICES[dotted]:
            raise ConfigError(f"{where} = {value!r}: expected one of {', '.join(map(repr, CHOICES[dotted]))}")
        if dotted in RANGES:
            low, high = RANGES[dotted]
            if not low <= value <= high:
                raise ConfigError(f"{where} = {value!r}: expected a value in [{_bound(low)}, {_bound(high)}]")
        values[key] = value
    return cls(**values)


def _resolve_paths(config: Config, path: Path) -> None:
    base = path.parent
    for dotted in PATH_KEYS:
        section_name, key = dotted.split(".")
        section = getattr(config, section_name)
        value = getattr(section, key)
        try:
            if value and not value.startswith(("/", "~")):
                setattr(section, key, str((base / value).resolve()))
            elif value.startswith("~"):
                setattr(section, key, str(Path(value).expanduser()))
        except RuntimeError as exc:  # "~user" of no such user (or, before Python 3.13, a symlink loop)
            raise ConfigError(f"{path}: {dotted} = {value!r}: {_unresolvable(value, exc)}") from None


def _unresolvable(value: str, exc: RuntimeError) -> str:
    """What Path.expanduser / resolve's RuntimeError means, in words naming the part at fault."""
    if value.startswith("~"):
        return f"cannot expand {value.split('/')[0]!r}: no such user's home directory"
    return f"cannot resolve the path ({exc})"


def area_bounds_problem(min_area: float, max_area: float, min_name: str, max_name: str) -> str:
    """Why no candidate can ever pass the area filter [min_area, max_area]: the lower bound
    above the upper one, both in the same unit (pixels if >= 1, image fractions if < 1; a fraction
    against a pixel count depends on the image size, so that pair is not judged here); "" if it can."""
    if (min_area >= 1) == (max_area >= 1) and min_area > max_area:
        unit = "pixels" if min_area >= 1 else "image fractions"
        return (
            f"{min_name} = {min_area:g} exceeds {max_name} = {max_area:g} (both {unit}): "
            "no candidate could pass the area filter"
        )
    return ""


def _check_depth_suffix(path: Path, camera: CameraSection) -> None:
    """A folder camera's depth suffix written with the extension replayed each depth map as an
    image and found no depth (the rule and its reason: edge/camera/folder_source.py)."""
    if camera.source != "folder":
        return
    from edge.camera.folder_source import depth_suffix_problem

    problem = depth_suffix_problem(camera.depth_suffix)
    if problem:
        raise ConfigError(f"{path}: camera.depth_suffix = {camera.depth_suffix!r}: expected {problem}")


def _cross_checks(path: Path, c: Config, check_calibration: bool) -> None:
    """Rules that span keys or touch the file system."""
    if c.bin.enabled and not Path(c.bin.model).is_file():
        raise ConfigError(
            f"{path}: bin.model = '{c.bin.model}': file not found (record it with `binpick bin`)"
        )
    if c.camera.backoff_initial_s > c.camera.backoff_max_s:
        raise ConfigError(
            f"{path}: camera.backoff_initial_s = {c.camera.backoff_initial_s} must not exceed "
            f"camera.backoff_max_s = {c.camera.backoff_max_s}"
        )
    if c.camera.source == "opencv" and not c.camera.uri:
        raise ConfigError(
            f"{path}: camera.uri = '': expected a device, pipeline, URL or file for source 'opencv'"
        )
    if c.camera.source == "folder" and not Path(c.camera.folder).is_dir():
        raise ConfigError(
            f"{path}: camera.folder = {c.camera.folder!r}: expected an existing folder of images"
        )
    if c.camera.source == "folder":
        from edge.camera.folder_source import depth_maps_problem

        problem = depth_maps_problem(Path(c.camera.folder), c.camera.pattern, c.camera.depth_suffix)
        if problem:
            raise ConfigError(f"{path}: camera.depth_suffix = '': {problem}")
    if c.camera.source == "genicam" and c.camera.cti and not Path(c.camera.cti).is_file():
        raise ConfigError(f"{path}: camera.cti = {c.camera.cti!r}: expected an existing GenTL producer file")
    if c.inference.depth_cue != "off" and not camera_has_depth(c.camera):
        raise ConfigError(
            f"{path}: inference.depth_cue = {c.inference.depth_cue!r}: camera.source "
            f"{c.camera.source!r} delivers no depth (expected {DEPTH_SOURCES}; or depth_cue = 'off')"
        )
    if c.suction.enabled and not camera_has_depth(c.camera):
        raise ConfigError(
            f"{path}: suction.enabled = true: camera.source {c.camera.source!r} delivers no depth "
            f"(expected {DEPTH_SOURCES}; or suction.enabled = false)"
        )
    if not Path(c.inference.model).is_file():
        raise ConfigError(f"{path}: inference.model = {c.inference.model!r}: expected an existing ONNX file")
    if c.inference.backend in ("torch", "torch-cuda") and not c.inference.torch_checkpoint:
        raise ConfigError(
            f"{path}: inference.torch_checkpoint = '': expected a checkpoint for backend "
            f"{c.inference.backend!r}"
        )
    if c.inference.torch_compile and c.inference.backend != "torch-cuda":
        raise ConfigError(
            f"{path}: inference.torch_compile = true: only for backend 'torch-cuda', "
            f"got backend {c.inference.backend!r}"
        )
    if c.inference.precision != "fp32" and c.inference.backend != "openvino":
        raise ConfigError(
            f"{path}: inference.precision = {c.inference.precision!r}: only for backend 'openvino', "
            f"got backend {c.inference.backend!r} (tensorrt and torch-cuda use inference.fp16)"
        )
    if c.inference.backend == "openvino" and c.inference.device == "cuda":
        raise ConfigError(
            f"{path}: inference.device = 'cuda': backend 'openvino' runs on the CPU "
            "(expected 'cpu' or 'auto')"
        )
    if c.inference.backend == "tensorrt" and c.inference.device == "cpu":
        raise ConfigError(
            f"{path}: inference.device = 'cpu': backend 'tensorrt' runs on the GPU "
            "(expected 'cuda' or 'auto'; for the CPU use backend 'onnxruntime' or 'openvino')"
        )
    if c.inference.backend == "torch-cuda" and c.inference.device == "cpu":
        raise ConfigError(
            f"{path}: inference.device = 'cpu': backend 'torch-cuda' runs on the GPU "
            "(expected 'cuda' or 'auto'; for the CPU use backend 'torch' or 'onnxruntime')"
        )
    if not Path(c.plc.registers).is_file():
        raise ConfigError(f"{path}: plc.registers = {c.plc.registers!r}: expected an existing register map")
    from edge.plc.register_map import RegisterMap, RegisterMapError

    try:  # --check-config says what `run` would refuse at start
        RegisterMap.load(c.plc.registers)
    except RegisterMapError as exc:
        raise ConfigError(f"{path}: plc.registers: {exc}") from None
    if c.calibration.cell and not CELL_NAME.fullmatch(c.calibration.cell):
        raise ConfigError(f"{path}: calibration.cell = {c.calibration.cell!r}: {CELL_NAME_HINT}")
    if c.calibration.required and not c.calibration.file:
        raise ConfigError(f"{path}: calibration.required = true: expected calibration.file to name a file")
    if not (c.plc.tcp_enabled or c.plc.rtu_enabled) and c.appliance.mode == "triggered":
        raise ConfigError(f"{path}: appliance.mode = 'triggered' needs plc.tcp_enabled or plc.rtu_enabled")
    problem = _folder_problem(Path(c.health.snapshot_dir))
    if problem:
        raise ConfigError(f"{path}: health.snapshot_dir = {c.health.snapshot_dir!r}: {problem}")
    _check_run_files(path, c, check_calibration)


def _check_run_files(path: Path, c: Config, check_calibration: bool) -> None:
    """What `run` would otherwise find broken on every cycle, said at load so that --check-config
    and the start refuse it: the bin model is read whole, a required calibration loaded, and the
    camera source's package looked for."""
    if c.bin.enabled:
        from edge.bin_model import BinModelError, load_bin_model

        try:
            load_bin_model(c.bin.model)
        except BinModelError as exc:
            raise ConfigError(f"{path}: bin.model: {exc}") from None
    if c.calibration.required and check_calibration:
        from edge.calibration_file import CalibrationError, load_calibration

        if not Path(c.calibration.file).is_file():
            raise ConfigError(
                f"{path}: calibration.file = {c.calibration.file!r}: file not found, and "
                "calibration.required = true (every cycle would fail with calibration_missing): "
                "write it with `binpick calibrate`, or set required = false for pixel mode until then"
            )
        try:
            other = load_calibration(c.calibration.file).other_cell(c.calibration.cell)
        except CalibrationError as exc:
            raise ConfigError(f"{path}: calibration.file: {exc}") from None
        if other:
            raise ConfigError(f"{path}: calibration.file = {c.calibration.file!r}: {other}")
    from edge.camera.packages import install_hint, missing_module

    missing = missing_module(c.camera.source)
    if missing:
        raise ConfigError(
            f"{path}: camera.source = {c.camera.source!r}: {install_hint(c.camera.source)} "
            f"(module {missing!r} is not installed)"
        )


def _folder_problem(folder: Path) -> str:
    """Why snapshots cannot be written under `folder` ("" if they can). The snapshot ring creates a
    missing folder at its first save: then its nearest existing parent must take it. Tried by
    creating (and removing) a hidden folder, as each save does: os.access says yes to root
    everywhere, /proc included, where nothing can be created."""
    target = folder
    try:
        while not target.exists():
            target = target.parent
    except OSError as exc:  # a parent that cannot be searched
        return f"cannot be reached ({exc.strerror or exc})"
    if not target.is_dir():
        kind = "a file" if target.is_file() else "not a folder"
        if target == folder:
            return f"is {kind}, expected a folder"
        return f"cannot be created: {target} is {kind}"
    try:
        tempfile.TemporaryDirectory(prefix=".binpick-check-", dir=target).cleanup()
    except OSError as exc:
        verb = "cannot be written" if target == folder else f"cannot be created in {target}"
        return f"{verb} ({exc.strerror or exc})"
    return ""


WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # a bind to every address: it meets a bind to any one of them


def _same_bind(host_a: str, host_b: str) -> bool:
    """Whether two listeners on these hosts and one port would collide (one of them would fail)."""
    name = {"localhost": "127.0.0.1"}
    a, b = name.get(host_a, host_a), name.get(host_b, host_b)
    return a == b or a in WILDCARD_HOSTS or b in WILDCARD_HOSTS


HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _host_like(host: str) -> bool:
    """An address to listen on: "" (every interface), an IP literal, or a name that is a valid
    host name (RFC 1123 labels). The name is not looked up here: a resolver can hang for its whole
    timeout, and the start names an unknown host in one line anyway (edge/plc/service.py)."""
    if host in WILDCARD_HOSTS:
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(HOST_LABEL.fullmatch(label) for label in name.split("."))


def _check_bin_polygon(path: Path, polygon: list[list[float]]) -> None:
    """`[bin] polygon`: at least 3 [u, v] corners, in order around the bin (edge.geometry's one
    crossing check, which `binpick bin --polygon` and `--corners-mm` use too)."""
    from edge.geometry import crossing_problem

    if 0 < len(polygon) < 3:
        raise ConfigError(f"{path}: bin.polygon: expected at least 3 [u, v] points, got {len(polygon)}")
    problem = crossing_problem(polygon) if polygon else ""
    if problem:
        raise ConfigError(f"{path}: bin.polygon: {problem}")


def _network_checks(path: Path, c: Config) -> None:
    """Who may reach the appliance: client lists parse, credentials parse, and a status page bound
    beyond loopback has credentials; the PLC and the status page do not share a port. (Independent
    of files: checked even without check_files.)"""
    from edge.health.auth import CredentialError, loopback_address, parse_credentials
    from edge.plc.access import parse_networks

    for dotted, host in (("plc.tcp_host", c.plc.tcp_host), ("health.http_host", c.health.http_host)):
        if not _host_like(host):
            raise ConfigError(
                f"{path}: {dotted} = {host!r}: not an IP address or host name (expected e.g. "
                "'127.0.0.1', '0.0.0.0', '::', 'localhost' or a name of letters, digits, '-' and '.')"
            )
    for key in ("allowed_clients", "readonly_clients"):
        try:
            parse_networks(getattr(c.plc, key))
        except ValueError as exc:
            raise ConfigError(f"{path}: plc.{key}: {exc}") from None
    for key in ("users", "tokens"):
        try:
            parse_credentials(getattr(c.health, key))
        except CredentialError as exc:
            raise ConfigError(f"{path}: health.{key}: {exc}") from None
    if (
        c.plc.tcp_enabled
        and c.health.http_enabled
        and c.plc.tcp_port == c.health.http_port
        and _same_bind(c.plc.tcp_host, c.health.http_host)
    ):
        raise ConfigError(
            f"{path}: health.http_port = {c.health.http_port} is plc.tcp_port too "
            f"(hosts {c.plc.tcp_host!r} and {c.health.http_host!r}): expected two different ports"
        )
    if (
        c.plc.tcp_enabled
        and not loopback_address(c.plc.tcp_host)
        and not (c.plc.allowed_clients or c.plc.readonly_clients)
    ):
        raise ConfigError(
            f"{path}: plc.tcp_host = {c.plc.tcp_host!r} is beyond loopback: expected "
            "plc.allowed_clients (the PLC's address or range) or plc.readonly_clients, so that no "
            "other host on the network can drive the appliance"
        )
    if (
        c.health.http_enabled
        and not loopback_address(c.health.http_host)
        and not (c.health.users or c.health.tokens)
    ):
        raise ConfigError(
            f"{path}: health.http_host = {c.health.http_host!r} is beyond loopback: expected "
            "health.users or health.tokens (make a hash with `binpick hash-password`)"
        )


DEPTH_SOURCES = (
    "simulated with simulated_depth stereo or exact, folder with a depth_suffix, realsense or orbbec"
)


def _check_model_input(path: Path, c: Config) -> None:
    """A depth or RGB-D model needs a camera that delivers depth: say so when the configuration
    is loaded, not as an inference error on every cycle."""
    from binpick_core.model_file import ModelFileError, read_model_info

    try:
        info = read_model_info(c.inference.model)
    except ModelFileError as exc:
        raise ConfigError(f"{path}: inference.model: {exc}") from None
    if info.uses_depth and not camera_has_depth(c.camera):
        raise ConfigError(
            f"{path}: inference.model = {c.inference.model!r} takes {info.input_kind!r} input, but "
            f"camera.source {c.camera.source!r} delivers no depth (expected {DEPTH_SOURCES}; or an RGB model)"
        )
    if c.inference.backend in ("torch", "torch-cuda"):
        _check_checkpoint_input(path, c, info.channels)


def _check_checkpoint_input(path: Path, c: Config, channels: int) -> None:
    """The torch backends run `torch_checkpoint` on frames preprocessed as `inference.model`'s
    metadata says: both must take the same input (an RGB checkpoint behind the RGB-D model failed
    every cycle with "expected input [N, 3, H, W], got [1, 4, ...]")."""
    from binpick_core.model_file import CHANNELS
    from edge.inference.base import InferenceError
    from edge.inference.torch_backend import checkpoint_channels

    backend, checkpoint = c.inference.backend, c.inference.torch_checkpoint
    try:
        taken = checkpoint_channels(checkpoint)
    except ImportError as exc:  # torch is the `train` extra: run would refuse the backend the same way
        raise ConfigError(
            f"{path}: inference.backend = {backend!r} needs `pip install .[train]` ({exc})"
        ) from None
    except InferenceError as exc:
        raise ConfigError(f"{path}: inference.torch_checkpoint: {exc}") from None
    if taken != channels:
        kind = {n: k for k, n in CHANNELS.items()}
        raise ConfigError(
            f"{path}: inference.torch_checkpoint = {checkpoint!r} takes {kind.get(taken, '?')!r} input "
            f"({taken} channels), but inference.model = {c.inference.model!r} prepares "
            f"{kind.get(channels, '?')!r} input ({channels} channels) from the camera's frames: "
            "expected a checkpoint and a model of the same input kind"
        )


def _check_preset(path: Path, camera: CameraSection) -> None:
    """A simulated camera's preset is one of Mikado's (its registry, not a copy here): a typo used
    to pass the check and then fail every grab with a traceback. Only for the simulated source, so
    that no other source's run path even tries to import Mikado; where Mikado is absent, opening
    the camera names the extra instead."""
    if camera.source != "simulated":
        return
    from edge.camera.simulated import preset_names

    names = preset_names()
    if names is not None and camera.preset not in names:
        raise ConfigError(
            f"{path}: camera.preset = {camera.preset!r}: expected one of {', '.join(map(repr, names))}"
        )


def camera_has_depth(camera: CameraSection) -> bool:
    """Whether the configured source can deliver a depth map with its frames."""
    if camera.source == "simulated":
        return camera.simulated_depth != "none"
    if camera.source == "folder":
        return bool(camera.depth_suffix)
    return camera.source in ("realsense", "orbbec")


# A file that sets nothing would run the development defaults (simulated camera, Modbus on 5020,
# the page on 8080) on a cell: an empty or truncated file is far likelier a mistake than a wish.
MINIMUM = (
    "expected the cell's settings, e.g. [camera] source and [inference] model "
    "(firmware_config/embedded.toml lists every key)"
)


def _emptiness(text: str) -> str:
    """What a configuration without a single key holds, in words."""
    if not text.strip():
        return "empty file"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if all(line.startswith("#") for line in lines):
        return "only comments"
    return "only empty sections"


def parse_config(text: str, path: Path, check_files: bool = True, check_calibration: bool = True) -> Config:
    """The configuration in `text` (read from `path`), validated; ConfigError otherwise.

    `check_files` = False skips what reads files or looks at the machine (tools that only want
    some values, or write the files themselves: `binpick bin`); `check_calibration` = False skips
    loading a required calibration (the calibration wizard, which writes it)."""
    if text.startswith("\ufeff"):  # tomllib's own message would be "Invalid statement (at line 1, column 1)"
        raise ConfigError(
            f"{path}: starts with a UTF-8 byte-order mark (BOM): expected plain UTF-8 TOML "
            "(save the file as UTF-8 without BOM)"
        )
    try:
        raw = toml_text.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    if all(isinstance(v, dict) and not v for v in raw.values()):  # no key anywhere
        raise ConfigError(f"{path}: no settings ({_emptiness(text)}): {MINIMUM}")
    sections = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "source"}
    hints = typing.get_type_hints(Config)
    for name in raw:
        if name not in sections:
            raise ConfigError(f"{path}: unknown section [{name}] (known: {', '.join(sections)})")
    config = Config(**{name: _section(path, name, hints[name], raw[name]) for name in raw}, source=str(path))
    _default_camera_size(config.camera, raw.get("camera", {}))
    _resolve_paths(config, path)
    try:  # RankingParams holds the ranking's own rules (odd patch, area bounds): one place for them
        config.ranking.params()
    except ValueError as exc:
        raise ConfigError(f"{path}: ranking.{exc}") from None
    ranking = config.ranking
    problem = area_bounds_problem(ranking.min_area, ranking.max_area, "ranking.min_area", "ranking.max_area")
    if problem:
        raise ConfigError(f"{path}: {problem}")
    _check_bin_polygon(path, config.bin.polygon)
    _check_preset(path, config.camera)
    _check_depth_suffix(path, config.camera)
    if not config.health.snapshot_dir:  # "" is the working directory: snapshots among the user's files
        raise ConfigError(f"{path}: health.snapshot_dir = '': expected a folder for the failure snapshots")
    if config.bin.enabled and not config.bin.model:
        raise ConfigError(f"{path}: bin.enabled = true: expected bin.model, the file `binpick bin` writes")
    _network_checks(path, config)
    if check_files:
        _cross_checks(path, config, check_calibration)
        _check_model_input(path, config)  # last: reads the model file's metadata
    return config


#: A camera's own default frame size where the section's 512x512 is no mode it offers.
SOURCE_DEFAULT_SIZE = {"realsense": (640, 480)}  # every RealSense colour sensor offers 640x480


def _default_camera_size(camera: CameraSection, raw: dict) -> None:
    """`width`/`height` left out take the source's own default: 512x512 (the simulated bin's and
    the bundled model's size) is no RealSense colour mode, so a RealSense configured without a
    size could never start. A size written in the file is kept as written."""
    size = SOURCE_DEFAULT_SIZE.get(camera.source)
    if size is None:
        return
    if "width" not in raw:
        camera.width = size[0]
    if "height" not in raw:
        camera.height = size[1]


def load_config(path: str | Path, check_files: bool = True, check_calibration: bool = True) -> Config:
    """Read and validate a configuration file (raises ConfigError); the flags as `parse_config`'s."""
    try:
        path = Path(path).expanduser().resolve()
    except RuntimeError as exc:  # "~user" of no such user
        raise ConfigError(f"{path}: {_unresolvable(str(path), exc)}") from None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): "
            "expected a TOML configuration"
        ) from None
    return parse_config(text, path, check_files, check_calibration)
