"""Replay a folder of images in name order: for commissioning and regression runs on saved frames.

Depth (optional): beside `NAME.png` a file `NAME<depth_suffix>.png|.npy|.exr` (suffix `_depth`
by default) is that frame's depth map, aligned to the image (same size):
- `.png`: 16-bit single channel, one unit = `camera.depth_unit_mm` millimetres (RealSense and
  Orbbec save 1 mm; Mikado's scenes 0.1 mm), 0 = no depth;
- `.npy`: float metres, HxW (integers are refused: their unit is unknown); `.exr`: float metres,
  first channel (OpenCV needs OPENCV_IO_ENABLE_OPENEXR=1 to read EXR);
non-finite or non-positive values are holes. Files ending in the suffix are never replayed as
images. A frame without a depth file has none (`Frame.depth_m` is None). A suffix written with
the extension (`_depth.png`) is refused, and so is `depth_suffix = ""` (no depth) where the
pattern matches NAME_depth.* maps beside NAME.*: both replayed the depth maps as images.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.camera.base import CameraError, CameraSource, CorruptFrame, Frame, make_frame

DEPTH_EXTENSIONS = (".png", ".npy", ".exr")
DEFAULT_DEPTH_SUFFIX = "_depth"


def depth_suffix_problem(suffix: str) -> str:
    """What is expected instead of `suffix` ("" if it is usable). The suffix goes between the
    image's stem and the depth file's extension, and a file is left out of the replay when its
    stem ends with it: written with the extension (`_depth.png`), no depth file was ever found
    (NAME_depth.png.png) and every NAME_depth.png was replayed as an image."""
    for ext in DEPTH_EXTENSIONS:
        if suffix.lower().endswith(ext):
            return (
                f"the name's part before the extension, e.g. {suffix[: -len(ext)]!r} "
                f"(NAME{suffix[: -len(ext)]}.png|.npy|.exr beside NAME.png)"
            )
    return ""


def depth_maps_among_images(files: list[Path], suffix: str) -> tuple[Path, Path] | None:
    """(depth map, its image) when `depth_suffix = ""` (no depth) and the matched files hold a
    NAME_depth.png|.npy|.exr beside NAME.*: with no suffix nothing is left out of the replay, so
    each depth map would be replayed as a frame of its own (a 16-bit map read as a colour image)."""
    if suffix:
        return None
    by_stem = {p.stem: p for p in files}
    for p in sorted(files):
        stem = p.stem.removesuffix(DEFAULT_DEPTH_SUFFIX)
        if p.suffix.lower() in DEPTH_EXTENSIONS and stem != p.stem and stem in by_stem:
            return p, by_stem[stem]
    return None


def depth_maps_problem(folder: Path, pattern: str, suffix: str) -> str:
    """`depth_maps_among_images` said as what is expected ("" when there are none)."""
    found = depth_maps_among_images([p for p in folder.glob(pattern) if p.is_file()], suffix)
    if found is None:
        return ""
    depth, image = found
    return (
        f"pattern {pattern!r} matches depth maps in {folder} ({depth.name} beside {image.name}), which "
        f"would be replayed as images: expected depth_suffix = {DEFAULT_DEPTH_SUFFIX!r} (their suffix), "
        "or a pattern that leaves them out"
    )


def read_depth(path: Path, unit_mm: float) -> np.ndarray:
    """One depth file as HxW float32 metres, holes NaN (CorruptFrame when unreadable)."""
    if path.suffix == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CorruptFrame(f"{path}: not a readable .npy depth map ({exc})") from exc
        if not np.issubdtype(depth.dtype, np.floating):
            # Raw camera units (uint16 millimetres from `np.save(depth_frame)`) would otherwise be
            # read as metres: 850 mm as 850 m, silently. The unit of integers is only known for PNGs.
            raise CorruptFrame(
                f"{path}: depth of dtype {depth.dtype}: expected float metres in a .npy "
                "(raw integer units: save them as a 16-bit PNG, one unit = camera.depth_unit_mm mm)"
            )
        depth = np.asarray(depth, np.float32)
    else:
        depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if depth is None:
            raise CorruptFrame(f"{path}: not a decodable depth image")
        if depth.ndim == 3:
            depth = depth[..., 0]
        if path.suffix == ".png":
            if depth.dtype != np.uint16:
                raise CorruptFrame(f"{path}: expected a 16-bit depth PNG, got {depth.dtype}")
            raw = depth
            depth = raw.astype(np.float32) * np.float32(unit_mm / 1000.0)
            depth[raw == 0] = np.nan
        depth = np.asarray(depth, np.float32)
    if depth.ndim != 2:
        raise CorruptFrame(f"{path}: expected an HxW depth map, got shape {depth.shape}")
    depth = depth.copy()
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


class FolderSource(CameraSource):
    holds_device = False

    def __init__(
        self,
        folder: str,
        pattern: str = "*.png",
        loop: bool = True,
        depth_suffix: str = "_depth",
        depth_unit_mm: float = 1.0,
    ):
        self.folder = Path(folder)
        self.pattern = pattern
        self.loop = loop
        self.depth_suffix = depth_suffix
        self.depth_unit_mm = depth_unit_mm
        self.name = f"folder:{folder}"
        self.files: list[Path] = []
        self._next = 0
        self._index = 0
        self._corrupt = 0
        self._with_depth = 0

    def open(self) -> None:
        """List the images to replay. The configuration refuses the same problems naming its file;
        this is for a folder changed since, or a source built without a configuration."""
        suffix = self.depth_suffix
        problem = depth_suffix_problem(suffix)
        if problem:
            raise CameraError(f"{self.folder}: depth_suffix = {suffix!r}: expected {problem}")
        problem = depth_maps_problem(self.folder, self.pattern, suffix)
        if problem:
            raise CameraError(f"{self.folder}: depth_suffix = '': {problem}")
        self.files = sorted(
            p
            for p in self.folder.glob(self.pattern)
            if p.is_file() and not (suffix and p.stem.endswith(suffix))
        )
        if not self.files:
            raise CameraError(f"{self.folder}: no file matches {self.pattern!r}")

    def depth_file(self, image: Path) -> Path | None:
        """The depth file paired with `image`, or None."""
        if not self.depth_suffix:
            return None
        for ext in DEPTH_EXTENSIONS:
            candidate = image.with_name(f"{image.stem}{self.depth_suffix}{ext}")
            if candidate.is_file():
                return candidate
        return None

    def require_depth(self) -> None:
        if not any(self.depth_file(image) for image in self.files):
            names = "|".join(DEPTH_EXTENSIONS)
            raise CameraError(
                f"{self.folder}: the model takes depth, but no image has a depth file beside it "
                f"(NAME{self.depth_suffix}{names} for NAME.png; camera.depth_suffix = {self.depth_suffix!r})"
            )

    def grab(self, timeout: float) -> Frame:
        if self._next >= len(self.files):
            if not self.loop:
                raise CameraError(f"{self.folder}: all {len(self.files)} images replayed")
            self._next = 0
        path = self.files[self._next]
        self._next += 1
        self._index += 1
        if not path.exists():  # checked first: OpenCV's imread warns on stderr about a missing file
            raise CameraError(
                f"{path}: the file is gone (deleted or moved since the folder was listed at start)"
            )
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            self._corrupt += 1
            raise CorruptFrame(f"{path}: not a decodable image")
        depth = None
        depth_path = self.depth_file(path)
        if depth_path is not None:
            try:
                depth = read_depth(depth_path, self.depth_unit_mm)
            except CorruptFrame:
                self._corrupt += 1
                raise
            if depth.shape != bgr.shape[:2]:
                self._corrupt += 1
                raise CorruptFrame(
                    f"{depth_path}: depth is {depth.shape[1]}x{depth.shape[0]} px, its image "
                    f"{path.name} {bgr.shape[1]}x{bgr.shape[0]} px (expected the same size, aligned)"
                )
        try:  # the depth's unit, checked where every camera's frames are made, named by its file
            frame = make_frame(
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self._index, self.name, depth, str(depth_path or "")
            )
        except CorruptFrame:
            self._corrupt += 1
            raise
        if depth is not None:
            self._with_depth += 1
        frame.extras["path"] = str(path)
        if depth_path is not None:
            frame.extras["depth_path"] = str(depth_path)
        return frame

    def status(self) -> dict:
        return {
            "source": self.name,
            "state": "ready",
            "frames": self._index,
            "frames_with_depth": self._with_depth,
            "images": len(self.files),
            "corrupt_frames": self._corrupt,
        }
