"""Rebuild the real calibration photo sets the tests read from outside git (tests/data/calibration/SOURCE.md).

Photos taken from public repositories are not committed; the tests look for them in the folder
`BINPICK_CALIBRATION_PHOTOS` names (default: the workspace's `shared/data/calibration/`) and
skip, saying where the data goes, when a set is absent. This script redoes, from a local copy of
the source repository (a `fetch`ed mirror's git directory, or any clone holding the commit),
exactly the changes SOURCE.md lists, so a set can be rebuilt anywhere:

    python -m benchmarks.prepare_calibration_photos \\
        --jpjp /work/.mirror/jpjp210202+Hand-Eye-Calibration-Doosan-A0509-IntelRealSenseA457-ChArUco/repo \\
        --alimedlej /work/.mirror/alimedlej00+robot-hand-eye-calibration-experiments/repo \\
        --caliban /work/.mirror/DmitryYurov+caliban/repo \\
        --vorobyev /work/.mirror/VitalyVorobyev+calib-targets-rs/repo \\
        --out /work/realdata/calibration

Each source is optional (at least one): the calib.io ChArUco intrinsics set, a real eye-to-hand
hand-eye set (UR3e, joint angles turned into flange poses by the forward kinematics below) and
a real eye-in-hand one (Denso, Tabb's dataset 1), and a fine ChArUco seen in part (6 views).

Files are read at the pinned commit with `git show`, so a newer checkout cannot change a set.
"""

from __future__ import annotations

import argparse
import json
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


ALIMEDLEJ_REPO = "alimedlej00/robot-hand-eye-calibration-experiments"
ALIMEDLEJ_COMMIT = "cf0358fa01b40d95faaf8be5c98bfe953d4f6b1d"
EYE_TO_HAND_SET = "alimedlej-ur3e-eye-to-hand-cam1"
EYE_TO_HAND_SIZE = (1280, 720)  # the hand-eye photos; the intrinsics photos are 1920x1080
EYE_TO_HAND_INTRINSICS = [f"img_{i:02d}.jpg" for i in range(1, 37)]
# Poses 25 and 26: each image fits the *other* pose's joint angles (board-corner RMS 24 px each as
# published, 0.6 px like the rest once exchanged): their images were swapped when the set was
# saved. Written apart (poses-all-40.json) and left out of poses.json rather than swapped back.
EYE_TO_HAND_MISMATCHED = (25, 26)
CALIBAN_REPO = "DmitryYurov/caliban"
CALIBAN_COMMIT = "a9688ed9769a41aa018149bdca6941a45e1b9a29"
EYE_IN_HAND_SET = "tabb-denso-eye-in-hand"
EYE_IN_HAND_VIEWS = list(range(0, 88, 3))  # every third of the 88: 30 views

# Universal Robots' nominal standard-DH parameters (m, rad): (d, a, alpha) per joint, theta = q.
# UR3e as in the source's robot_model_dh_nominal_ur3a.json; the CB-series UR3 for comparison
# (Universal Robots' "DH parameters for calculations of kinematics and dynamics" page). The
# photos' board-corner RMS after the hand-eye refinement picks the UR3e table (docs/calibration.md).
UR3E_DH = (
    (0.15185, 0.0, np.pi / 2),
    (0.0, -0.24355, 0.0),
    (0.0, -0.2132, 0.0),
    (0.13105, 0.0, np.pi / 2),
    (0.08535, 0.0, -np.pi / 2),
    (0.0921, 0.0, 0.0),
)
UR3_CB_DH = (
    (0.1519, 0.0, np.pi / 2),
    (0.0, -0.24365, 0.0),
    (0.0, -0.21325, 0.0),
    (0.11235, 0.0, np.pi / 2),
    (0.08535, 0.0, -np.pi / 2),
    (0.0819, 0.0, 0.0),
)


def dh_forward_kinematics(joints_rad, dh=UR3E_DH) -> np.ndarray:
    """4x4 base <- flange (mm) from joint angles with a standard-DH table of (d, a, alpha) in m, rad.

    Each joint: Rz(theta) Tz(d) Tx(a) Rx(alpha), theta the joint angle (no offsets for UR robots).
    """
    t = np.eye(4)
    for theta, (d, a, alpha) in zip(joints_rad, dh, strict=True):
        ct, st, ca, sa = np.cos(theta), np.sin(theta), np.cos(alpha), np.sin(alpha)
        t = t @ np.array(
            [
                [ct, -st * ca, st * sa, a * ct],
                [st, ct * ca, -ct * sa, a * st],
                [0.0, sa, ca, d],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )
    t[:3, 3] *= 1000.0
    return t


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")


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


VOROBYEV_REPO = "VitalyVorobyev/calib-targets-rs"
# The photos are Git LFS pointers at the repository's newer commits: this one holds the images.
VOROBYEV_COMMIT = "ab4ebd76a90dffbb7b09c3c4af87f4af19637e68"
FINE_CHARUCO_SET = "vorobyev-fine-charuco-22x22"
FINE_CHARUCO_VIEWS = [f"small{i}.png" for i in range(6)]

FINE_CHARUCO_SOURCE_MD = f"""# {FINE_CHARUCO_SET}

- **What**: a fine ChArUco board (22x22 squares, DICT_4X4_1000 markers of 0.75 square, OpenCV's
  current layout; the source's detector configuration gives a cell size of 5.2, unit not stated)
  larger than the field of view: each of the 6 grayscale 720x540 photos shows a different patch
  of it (45-68 of its 441 inner corners), with a shallow depth of field.
- **Source**: github.com/{VOROBYEV_REPO}, commit {VOROBYEV_COMMIT},
  `testdata/small0.png` ... `small5.png` (board: `testdata/charuco_detect_config_small.json`).
- **Changed**: nothing (the PNG bytes as published).
- **Licence**: MIT, copyright (c) 2025 Vitaly Vorobyev; copy in `LICENSE` beside the photos.
- **Board file** (in binpick's git): `tests/data/calibration/vorobyev-charuco-22x22-board.json`.
"""


def prepare_fine_charuco(repo: Path, out: Path) -> Path:
    """Write the fine partial ChArUco set (6 PNGs as published, LICENSE, SOURCE.md) under out/."""
    photos = {}
    for name in FINE_CHARUCO_VIEWS:  # read and check everything before writing anything
        data = git_file(repo, VOROBYEV_COMMIT, f"testdata/{name}")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None or image.shape != (540, 720):
            shape = None if image is None else image.shape
            raise PrepareError(f"testdata/{name}: expected a 720x540 grayscale PNG, got {shape}")
        photos[name] = data
    licence = git_file(repo, VOROBYEV_COMMIT, "LICENSE")
    folder = out / FINE_CHARUCO_SET
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in photos.items():
        (folder / name).write_bytes(data)
    (folder / "LICENSE").write_bytes(licence)
    (folder / "SOURCE.md").write_text(FINE_CHARUCO_SOURCE_MD)
    return folder


def _decode(data: bytes, name: str, size: tuple[int, int]) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or (image.shape[1], image.shape[0]) != size:
        shape = None if image is None else image.shape
        raise PrepareError(f"{name}: expected a {size[0]}x{size[1]} colour image, got {shape}")
    return image


def _write_images(folder: Path, images: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        if not cv2.imwrite(str(folder / name), image):
            raise PrepareError(f"{folder / name}: could not write")


def _chessboard(name: str, columns: int, rows: int, square_mm: float) -> dict:
    return {"type": "chessboard", "name": name, "square_mm": square_mm, "inner_corners": [columns, rows]}


EYE_TO_HAND_SOURCE_MD = f"""# {EYE_TO_HAND_SET}

- **What**: a real eye-to-hand set. A fixed webcam ("cam1") looks at a 9x7 inner-corner
  checkerboard of 20 mm squares (10x8 squares, printed on paper) held on the flange of a
  Universal Robots UR3e. `hand_eye/`: the 40 robot poses' photos, 1280x720; `poses.json`: 38 of
  them (poses 25 and 26 left out, see below) with base <- flange in mm; `poses-all-40.json`: all
  40 as published; `intrinsics/`: the camera's 36 intrinsics photos of the same board;
  `board.json`: the board file for binpick's wizard.
- **Source**: github.com/{ALIMEDLEJ_REPO}, commit {ALIMEDLEJ_COMMIT}:
  `03_extrinsic_calibration/images/cam1_images/img{{1..40}}_cam1.png`,
  `03_extrinsic_calibration/shared_inputs/dataset_ur3a_joint_images_40poses.json` (joint angles,
  degrees), `03_extrinsic_calibration/shared_inputs/robot_model_dh_nominal_ur3a.json` (UR3e
  nominal standard DH), `02_intrinsic_calibration/cam1/01_input_images/img_01..36.jpg`.
- **Changed**: photos converted to 8-bit grayscale PNG (OpenCV cvtColor BGR2GRAY). The intrinsics
  photos are 1920x1080 JPEGs and the hand-eye photos 1280x720 (the source's README: "scaled
  during processing"; its own PnP scales the camera matrix by 2/3): they were resized to 1280x720
  with OpenCV INTER_AREA before the conversion. Poses: joint angles turned into base <- flange
  (mm) by standard-DH forward kinematics with the source's UR3e table (binpick's
  `benchmarks/prepare_calibration_photos.py`, `dh_forward_kinematics`); the joint angles are kept
  beside each matrix. Poses 25 and 26: each photo fits the other pose's joint angles (24 px
  board-corner error each as published, 0.6 px like the others once exchanged): they are in
  `poses-all-40.json` only.
- **Licence**: MIT, copyright (c) 2026 alimedlej00; copy in `LICENSE` beside this file.
"""

EYE_IN_HAND_SOURCE_MD = f"""# {EYE_IN_HAND_SET}

- **What**: a real eye-in-hand set: a Sony XCD camera (640x480) on a Denso VS-6577GM-B robot
  looks at an 8x6 inner-corner chessboard of 28.5 mm squares fixed in the cell. 30 of the 88
  photos (every third: image00, image03, ..., image87), `poses.json` with base <- flange (mm) for
  each, and `"capture"`: the pose of image00 (the wizard's floor image). `board.json`: the board
  file for binpick's wizard.
- **Source**: github.com/{CALIBAN_REPO}, commit {CALIBAN_COMMIT}, `datasets/1/` (`image00.png`
  ... `image87.png`, `robot_cali.txt`, `calibration_object.txt`), a copy of Amy Tabb's
  "Robot-World Hand-Eye(s)" dataset 1 (USDA Ag Data Commons, doi 10.15482/USDA.ADC/1432157).
- **Changed**: photos converted to 8-bit grayscale PNG (OpenCV cvtColor BGR2GRAY). Poses:
  `robot_cali.txt` holds Tabb's B_i, the transform from the robot base to the hand (gripper <-
  base, mm); each was inverted into base <- flange.
- **Licence**: MIT, copyright (c) 2025 Dmitry Yurov; copy in `LICENSE` beside this file.
"""


def prepare_eye_to_hand(repo: Path, out: Path) -> Path:
    """Write the UR3e eye-to-hand set (photos, poses, board file, LICENSE, SOURCE.md); returns the folder."""
    c = ALIMEDLEJ_COMMIT
    shared = "03_extrinsic_calibration/shared_inputs"
    dataset = json.loads(git_file(repo, c, f"{shared}/dataset_ur3a_joint_images_40poses.json"))
    model = json.loads(git_file(repo, c, f"{shared}/robot_model_dh_nominal_ur3a.json"))
    table = tuple((j["d"], j["a"], j["alpha"]) for j in model["joints"])
    if model["dh_convention"] != "standard" or any(j["theta_offset"] for j in model["joints"]):
        raise PrepareError(f"{shared}/robot_model_dh_nominal_ur3a.json: expected standard DH without offsets")
    if not np.allclose(table, UR3E_DH, atol=1e-9):
        raise PrepareError(f"{shared}/robot_model_dh_nominal_ur3a.json: not the UR3e table {UR3E_DH}")
    hand_eye, poses = {}, []
    for entry in dataset["poses"]:
        pose_id = int(entry["pose_id"])
        name = f"img{pose_id}_cam1.png"
        path = f"03_extrinsic_calibration/images/cam1_images/{name}"
        hand_eye[name] = cv2.cvtColor(
            _decode(git_file(repo, c, path), name, EYE_TO_HAND_SIZE), cv2.COLOR_BGR2GRAY
        )
        joints = [float(entry["joint_angles_deg"][f"joint_{k}"]) for k in range(1, 7)]
        flange = dh_forward_kinematics(np.radians(joints), UR3E_DH)
        poses.append({"image": name, "matrix": np.round(flange, 6).tolist(), "joint_angles_deg": joints})
    intrinsics = {}
    for name in EYE_TO_HAND_INTRINSICS:
        path = f"02_intrinsic_calibration/cam1/01_input_images/{name}"
        image = _decode(git_file(repo, c, path), name, (1920, 1080))
        small = cv2.resize(image, EYE_TO_HAND_SIZE, interpolation=cv2.INTER_AREA)
        intrinsics[name.replace(".jpg", ".png")] = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    licence = git_file(repo, c, "LICENSE")
    folder = out / EYE_TO_HAND_SET
    _write_images(folder / "hand_eye", hand_eye)
    _write_images(folder / "intrinsics", intrinsics)
    kept = [p for p in poses if int(p["image"][3:].split("_")[0]) not in EYE_TO_HAND_MISMATCHED]
    note = "base <- flange (mm) by standard-DH forward kinematics, UR3e nominal table, from joint_angles_deg"
    write_json(folder / "poses.json", {"note": note, "poses": kept})
    write_json(folder / "poses-all-40.json", {"note": note, "poses": poses})
    write_json(folder / "board.json", _chessboard("alimedlej-checkerboard-9x7-20mm", 9, 7, 20.0))
    (folder / "LICENSE").write_bytes(licence)
    (folder / "SOURCE.md").write_text(EYE_TO_HAND_SOURCE_MD)
    return folder


def prepare_eye_in_hand(repo: Path, out: Path) -> Path:
    """The Denso eye-in-hand set (30 photos, poses, board file, LICENSE, SOURCE.md); returns its folder."""
    c = CALIBAN_COMMIT
    values = git_file(repo, c, "datasets/1/robot_cali.txt").split()
    count = int(values[0])
    matrices = np.array([float(v) for v in values[1:]]).reshape(count, 4, 4)
    if count != 88 or not np.allclose(matrices[:, 3], [0.0, 0.0, 0.0, 1.0]):
        raise PrepareError("datasets/1/robot_cali.txt: expected 88 homogeneous 4x4 matrices")
    board_text = git_file(repo, c, "datasets/1/calibration_object.txt").decode()
    if "28.5 mm" not in board_text or "8x6" not in board_text:
        raise PrepareError(
            f"datasets/1/calibration_object.txt: expected an 8x6 board of 28.5 mm, got {board_text!r}"
        )
    images, poses = {}, []
    for i in EYE_IN_HAND_VIEWS:
        name = f"image{i:02d}.png"
        image = _decode(git_file(repo, c, f"datasets/1/{name}"), name, (640, 480))
        images[name] = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        flange = np.linalg.inv(matrices[i])  # Tabb's B_i is gripper <- base
        poses.append({"image": name, "matrix": np.round(flange, 6).tolist()})
    licence = git_file(repo, c, "LICENSE")
    folder = out / EYE_IN_HAND_SET
    _write_images(folder / "hand_eye", images)
    note = "base <- flange (mm): the inverse of Tabb's base-to-hand B_i (robot_cali.txt)"
    write_json(
        folder / "poses.json", {"note": note, "capture": {"matrix": poses[0]["matrix"]}, "poses": poses}
    )
    write_json(folder / "board.json", _chessboard("tabb-chessboard-8x6-28.5mm", 8, 6, 28.5))
    (folder / "LICENSE").write_bytes(licence)
    (folder / "SOURCE.md").write_text(EYE_IN_HAND_SOURCE_MD)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jpjp", type=Path, help=f"local copy of {JPJP_REPO}")
    parser.add_argument("--alimedlej", type=Path, help=f"local copy of {ALIMEDLEJ_REPO} (eye-to-hand set)")
    parser.add_argument("--caliban", type=Path, help=f"local copy of {CALIBAN_REPO} (eye-in-hand set)")
    parser.add_argument(
        "--vorobyev", type=Path, help=f"local copy of {VOROBYEV_REPO} (fine ChArUco seen in part)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "calibration"
    )
    args = parser.parse_args(argv)
    jobs = [
        (args.jpjp, prepare_calibio),
        (args.alimedlej, prepare_eye_to_hand),
        (args.caliban, prepare_eye_in_hand),
        (args.vorobyev, prepare_fine_charuco),
    ]
    if not any(repo for repo, _ in jobs):
        parser.error("give at least one of --jpjp, --alimedlej, --caliban, --vorobyev")
    for repo, prepare in jobs:
        if repo is None:
            continue
        try:
            folder = prepare(repo, args.out)
        except PrepareError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {folder}")
    print(f"run the tests with BINPICK_CALIBRATION_PHOTOS={args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
