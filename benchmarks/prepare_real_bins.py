"""Rebuild the real-bin photo set (benchmarks/data/bins/manifest.toml) from its source repositories.

The images are not in git (the tool rules keep data taken from public repositories in the
workspace's shared folder), and that folder does not outlive a workspace. This script redoes,
from a local copy of each source repository (a `fetch`ed mirror, or any clone holding the
manifest's commit), exactly what each frame's `changes` field says, so the set can be rebuilt
anywhere:

    python -m benchmarks.prepare_real_bins --source pantor/griffig=/work/.mirror/pantor+griffig/repo \\
        --source fhagelskjaer/sdui40binpick=/work/.mirror/fhagelskjaer+sdui40binpick/repo \\
        --source o2as/ur-o2as=/work/.mirror/o2as+ur-o2as/repo \\
        --source keti-ai/kpick-suction-release=/work/.mirror/keti-ai+kpick-suction-release/repo \\
        --source keti-ai/kpick-release-py38=/work/.mirror/keti-ai+kpick-release-py38/repo \\
        [--out ../shared/data/bins]

Files are read at the manifest's `source_commit` with `git show`, so a newer checkout of the
source cannot change the set. One function per frame id: a new frame needs its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from benchmarks import git_source
from benchmarks.real_bins import DEFAULT_DATA, DEFAULT_MANIFEST, DataError, load_manifest
from mikado.io import write_image

# griffig's test loader (test/loader.py: OrthographicImage(min_depth=0.22, max_depth=0.41)) and
# include/griffig/orthographic_image.hpp depthFromValue: depth = max + v / 255 * (min - max).
GRIFFIG_MIN_M, GRIFFIG_MAX_M = 0.22, 0.41


def git_file(repo: Path, commit: str, path: str) -> bytes:
    """A file's bytes at `commit` (the manifest's), from a git directory or a clone."""
    try:
        return git_source.git_file(repo, commit, path)
    except git_source.SourceError as exc:
        raise DataError(str(exc)) from None


def decode(data: bytes, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise DataError("not a readable image")
    return image


def griffig_depth_mm(grey: np.ndarray) -> np.ndarray:
    """griffig's 8-bit depth value -> 16-bit mm (0 = no measurement)."""
    depth_m = GRIFFIG_MAX_M + grey.astype(np.float64) / 255.0 * (GRIFFIG_MIN_M - GRIFFIG_MAX_M)
    return np.round(depth_m * 1000.0).astype(np.uint16)


def griffig_test1(entry: dict, read: Callable[[str], bytes]) -> tuple[np.ndarray, np.ndarray]:
    """1-rc.jpeg (colour) and 1-rd.jpeg (depth, one grey value) -> PNG; v < 8 (JPEG noise
    around 0, "no point") becomes 0."""
    colour_path, depth_path = entry["source_paths"]
    rgb = decode(read(colour_path))
    grey = decode(read(depth_path), cv2.IMREAD_GRAYSCALE)
    depth = griffig_depth_mm(grey)
    depth[grey < 8] = 0
    return rgb, depth


def griffig_doc_input(entry: dict, read: Callable[[str], bytes]) -> tuple[np.ndarray, np.ndarray]:
    """doc/input.jpeg: colour (columns 10-674) and depth (675-1339) side by side, with overlays
    drawn on both. Colour: pure white and pure blue overlay pixels, dilated by 1 px, inpainted
    (Telea, radius 3). Depth: grey -> mm with the test loader's range; coloured or white overlay
    pixels, dilated by 1 px, become 0."""
    both = decode(read(entry["source_paths"][0]))
    width, height = entry["size"]
    colour = np.ascontiguousarray(both[:height, 10 : 10 + width])
    pane = np.ascontiguousarray(both[:height, 675 : 675 + width])
    kernel = np.ones((3, 3), np.uint8)
    b, g, r = (colour[..., i].astype(np.int16) for i in range(3))
    overlay = ((b >= 245) & (g >= 245) & (r >= 245)) | ((b >= 200) & (g <= 60) & (r <= 60))
    overlay = cv2.dilate(overlay.astype(np.uint8), kernel)
    rgb = cv2.inpaint(colour, overlay, 3, cv2.INPAINT_TELEA)
    spread = pane.max(axis=2).astype(np.int16) - pane.min(axis=2).astype(np.int16)
    grey = cv2.cvtColor(pane, cv2.COLOR_BGR2GRAY)
    drawn = cv2.dilate(((spread > 30) | (grey >= 250)).astype(np.uint8), kernel).astype(bool)
    depth = griffig_depth_mm(grey)
    depth[drawn] = 0
    return rgb, depth


def crop_of(entry: dict) -> tuple[int, int, int, int]:
    """The frame's window in the source picture, (x, y, width, height): `crop_xy` (the
    top-left corner, source px) and `size`."""
    x, y = entry["crop_xy"]
    width, height = entry["size"]
    return int(x), int(y), int(width), int(height)


def sdui40_bin(entry: dict, read: Callable[[str], bytes]) -> tuple[np.ndarray, np.ndarray]:
    """sdui40binpick data/<scene>/color.png and depth_image_01mm_resolution.png (Zivid, one
    point cloud, so pixel-aligned): one bin of the rack cut out at `crop_xy`, `size`. Depth: the
    source writes z in units of 0.1 mm (utils/capture_pc_and_depth_in_folder.py: depth * 10 as
    uint16, 0 = no point) -> mm, rounded; 0 stays 0."""
    colour_path, depth_path = entry["source_paths"]
    x, y, w, h = crop_of(entry)
    rgb = decode(read(colour_path))[y : y + h, x : x + w]
    raw = decode(read(depth_path), cv2.IMREAD_UNCHANGED)
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise DataError(f"{depth_path}: {raw.dtype} {raw.shape}, expected 16-bit single-channel")
    depth = np.round(raw[y : y + h, x : x + w].astype(np.float64) / 10.0).astype(np.uint16)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(depth)


def o2as_grey(entry: dict, read: Callable[[str], bytes]) -> tuple[np.ndarray, None]:
    """ur-o2as omron_cad_matching test images: 8-bit greyscale PNG -> the same grey in 3
    channels (no resize, no crop). The source's depth (.tiff/.dat) is not in the snapshot, so
    the frame has none."""
    grey = decode(read(entry["source_paths"][0]), cv2.IMREAD_GRAYSCALE)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), None


def kpick_rgbd(entry: dict, read: Callable[[str], bytes]) -> tuple[np.ndarray, np.ndarray]:
    """keti-ai kpick test images: an 8-bit colour PNG and a 16-bit depth PNG (mm, 0 = no
    measurement; RealSense aligned to colour, or Zivid), both as stored: no resize, no crop, no
    change of values."""
    colour_path, depth_path = entry["source_paths"]
    rgb = decode(read(colour_path))
    depth = decode(read(depth_path), cv2.IMREAD_UNCHANGED)
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise DataError(f"{depth_path}: {depth.dtype} {depth.shape}, expected 16-bit single-channel")
    return rgb, depth


KPICK_FRAMES = (
    "kpick_suction_boxes", "kpick_mujin_1", "kpick_mujin_2", "kpick_order_1", "kpick_random_1",
    "kpick_copper_1", "kpick_oi_1",
)  # fmt: skip

PREPARE: dict[str, Callable[[dict, Callable[[str], bytes]], tuple[np.ndarray, np.ndarray | None]]] = {
    "griffig_test1": griffig_test1,
    "griffig_doc_input": griffig_doc_input,
    **{
        f"sdui40_{scene}_bin{k}": sdui40_bin
        for scene, bins in (("wrs4", (1, 2, 3)), ("wrs14", (1, 2, 3)), ("test_cloud", (1, 2)))
        for k in bins
    },
    "o2as_bolts": o2as_grey,
    "o2as_pipes": o2as_grey,
    **{frame_id: kpick_rgbd for frame_id in KPICK_FRAMES},
}


def prepare(manifest: Path, sources: dict[str, Path], out: Path) -> list[str]:
    """Write every frame whose source repository is given; returns the ids written."""
    entries = load_manifest(manifest)
    known = sorted({entry["source_repo"] for entry in entries})
    unknown = sorted(set(sources) - set(known))
    if unknown:  # a misspelt name was skipped in silence, its frames never written
        raise DataError(
            f"--source {', '.join(unknown)}: not a source of {manifest}; expected one of {', '.join(known)}"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"--out {out}: {exc.strerror or exc}") from None
    written = []
    for entry in entries:
        repo = sources.get(entry["source_repo"])
        if repo is None:
            continue
        if entry["id"] not in PREPARE:
            raise DataError(f"{manifest}: frame {entry['id']!r} has no preparation in {__file__}")
        commit = entry["source_commit"]
        rgb, depth = PREPARE[entry["id"]](entry, lambda p, r=repo, c=commit: git_file(r, c, p))
        width, height = entry["size"]
        if rgb.shape[:2] != (height, width) or (depth is not None and depth.shape != (height, width)):
            raise DataError(
                f"{entry['id']}: prepared {rgb.shape[1]}x{rgb.shape[0]}, manifest says {width}x{height}"
            )
        if "depth_mm" in entry and depth is None:
            raise DataError(f"{entry['id']}: the manifest names a depth file, the source has no depth")
        try:  # cv2.imwrite's False (full disk, no permission) went unchecked: a frame missing, said written
            write_image(out / entry["rgb"], rgb, atomic=True)
            if "depth_mm" in entry:
                write_image(out / entry["depth_mm"], depth, atomic=True)
        except OSError as exc:
            text = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
            raise DataError(f"{entry['id']}: {text}") from None
        written.append(entry["id"])
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", action="append", default=[], metavar="OWNER/NAME=PATH",
                    help="a source repository's local copy (git dir or clone); repeatable")  # fmt: skip
    ap.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    ap.add_argument("--out", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    sources = {}
    for item in args.source:
        name, _, path = item.partition("=")
        if not path:
            ap.error(f"--source {item!r}: expected OWNER/NAME=PATH")
        sources[name] = Path(path)
    try:
        written = prepare(args.manifest, sources, args.out)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} frames to {args.out}: {', '.join(written) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
