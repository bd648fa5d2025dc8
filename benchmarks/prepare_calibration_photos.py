"""Rebuild the real calibration photo sets the tests read from outside git (tests/data/calibration/SOURCE.md).

Photos taken from public repositories are not committed; the tests look for them in the folder
`BINPICK_CALIBRATION_PHOTOS` names (default: the workspace's `shared/data/calibration/`) and
skip, saying where the data goes, when a set is absent. This script redoes, from a local copy of
the source repository (a `fetch`ed mirror's git directory, or any clone holding the commit),
exactly the changes SOURCE.md lists, so a set can be rebuilt anywhere:

    python -m benchmarks.prepare_calibration_photos \\
        --jpjp /work/.mirror/jpjp210202+Hand-Eye-Calibration-Doosan-A0509-IntelRealSenseA457-ChArUco/repo \\
        --out /work/realdata/calibration

Files are read at the pinned commit with `git show`, so a newer checkout cannot change a set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from benchmarks import git_source

JPJP_REPO = "jpjp210202/Hand-Eye-Calibration-Doosan-A0509-IntelRealSenseA457-ChArUco"
JPJP_COMMIT = "fc29533a1c3afd14dfad7f8181d2d4f8a0f05a62"
CALIBIO_SET = "calibio-charuco-5x7-rgbd"
CALIBIO_VIEWS = [f"calib_{i:03d}.png" for i in range(0, 28, 3)]  # every third of the 28: 10 views

CALIBIO_SOURCE_MD = f"""# {CALIBIO_SET}

- **What**: a calib.io ChArUco board, 7x5 squares of 30 mm, 22 mm DICT_4X4 markers (printed on
  paper, on card), seen by an Intel RealSense colour camera at 1280x720; 10 of the 28 published
  intrinsics views (every third: calib_000, 003, ..., 027).
- **Source**: github.com/{JPJP_REPO}, commit {JPJP_COMMIT}, `data/intrinsics_images/`.
- **Changed**: converted losslessly from 8-bit BGR to 8-bit grayscale PNG (OpenCV cvtColor
  BGR2GRAY), nothing else. Written by binpick's `benchmarks/prepare_calibration_photos.py`.
- **Licence**: MIT, copyright (c) 2025 J P Jaipuneeth; copy in `LICENSE` beside the photos.
- **Board file** (in binpick's git): `tests/data/calibration/calibio-charuco-5x7-board.json`.
"""


class PrepareError(RuntimeError):
    """The source copy is missing, at the wrong commit, or not what the set expects."""


def git_file(repo: Path, commit: str, path: str) -> bytes:
    """A file's bytes at `commit`, from a git directory or a clone."""
    try:
        return git_source.git_file(repo, commit, path)
    except git_source.SourceError as exc:
        raise PrepareError(str(exc)) from None


def prepare_calibio(repo: Path, out: Path) -> Path:
    """Write the calib.io ChArUco set (10 gray PNGs, LICENSE, SOURCE.md) under out/; returns the folder."""
    grays = {}
    for name in CALIBIO_VIEWS:  # read and check everything before writing anything
        data = git_file(repo, JPJP_COMMIT, f"data/intrinsics_images/{name}")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None or image.shape[:2] != (720, 1280):
            shape = None if image is None else image.shape
            raise PrepareError(f"{name}: expected a 1280x720 colour PNG, got {shape}")
        grays[name] = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    licence = git_file(repo, JPJP_COMMIT, "LICENSE")
    folder = out / CALIBIO_SET
    folder.mkdir(parents=True, exist_ok=True)
    for name, gray in grays.items():
        if not cv2.imwrite(str(folder / name), gray):
            raise PrepareError(f"{folder / name}: could not write")
    (folder / "LICENSE").write_bytes(licence)
    (folder / "SOURCE.md").write_text(CALIBIO_SOURCE_MD)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jpjp", type=Path, required=True, help=f"local copy of {JPJP_REPO}")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "calibration"
    )
    args = parser.parse_args(argv)
    try:
        folder = prepare_calibio(args.jpjp, args.out)
    except PrepareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{folder}: {len(CALIBIO_VIEWS)} views; run the tests with BINPICK_CALIBRATION_PHOTOS={args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
