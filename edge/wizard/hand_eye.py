"""Hand-eye calibration: closed form as the start, then a joint reprojection refinement with its uncertainty.

The closed-form solvers (OpenCV's `calibrateHandEye`: Tsai, Park, Horaud, Andreff, Daniilidis)
fit relative motions and ignore how well each board corner was seen; judged by how consistent
their answer is across poses, they fail real cells whose robot poses carry a millimetre or two
of error. What integrators' tools do (ROS-Industrial calibration, MoveIt calibration) is what
this module does: take the closed form as the starting point and refine *both* unknown
transforms jointly, over all views, on the board-corner reprojection error with the intrinsics
fixed (Levenberg-Marquardt, SciPy `least_squares`). The Jacobian at the optimum gives the
parameters' covariance, s^2 (J^T J)^-1 with s^2 the residual variance, and from it the 1-sigma
uncertainty of the camera pose and of any point the appliance will compute through it: the
pass/fail is on that predicted error where the robot picks, in millimetres.

The predicted error is the root-mean-square 3-D error at the worst of the pick-plane check
points, sqrt(trace) of the point's covariance: the RMS distance between where the appliance puts
a point and where it is. It is held to the same 2 mm as the touch-point fit's RMS (step 2) and a
touch validation's error (step 4), and it is the size of error that the simulated cell's cost of
a calibration off by D mm applies to. On the synthetic sets below it is 0.39-2.61x the error
actually made at the worst point per calibration (median 0.89), so a set passing at 2 mm may be
off by up to about 3 mm (docs/calibration.md has the counts). A 3-sigma bound along the worst
direction is reported beside it, not decided on: held to 2 mm it refused 13 of 30 synthetic
calibrations within 2 mm, and both real arms in the tests on their nominal kinematics.

s^2 (J^T J)^-1 assumes every corner's error independent. Robot pose errors break that: they
move a whole view's board at once. Measured on synthetic eye-to-hand sets (12, 16 and 30 views,
0.3 px corner noise, camera 700 mm above a gripper tilted +-30 degrees; docs/calibration.md
has the table, medians over five seeds): with exact robot poses it predicts the pick-plane
error well (1-sigma 0.09-0.16 mm, actual 0.13-0.25 mm), but with 1 mm and/or 0.1-0.2 degree of
pose noise per view it said 0.13-0.50 mm where the refined camera put pick-plane points 1.3-5.4
mm off. The same Jacobian in the view-clustered ("sandwich") form, (J^T J)^-1 (sum over views
of J_v^T r_v r_v^T J_v) (J^T J)^-1 scaled by m/(m-1), treats each view as one sample and said
0.7-4.3 mm there.
Both are reported; the predicted error uses the larger, so a set with bad robot poses fails
instead of passing on an optimistic number.

With `pose_errors="estimate"` the refinement stops taking the robot's poses as exact: each view
gets a six-parameter correction of its robot pose with a zero-mean prior, and the spreads of
the corners (px), of the pose translations (mm) and rotations (rad) are estimated from the data
by variance component estimation (Foerstner 1979; Koch, Parameter Estimation and Hypothesis
Testing in Linear Models, 3.6), so no robot accuracy has to be typed in. That is generalised
least squares: a view whose board disagrees with its pose is explained as the robot's error
where that is the likelier cause, instead of pulling the camera. Measured on the synthetic sets
above with 1 mm and/or 0.1-0.2 degree of pose noise, it put the floor 1.3-3.8x nearer the truth
(eye-to-hand, median over 5 seeds; eye-in-hand 3.5x) and recovered the noise it was given; with
exact poses it is the plain refinement. The estimated spreads are reported: they say how far
the robot's poses are from where the photos put the board, the figure a technician needs to
decide between recalibrating the arm and retaking the photos.

Two set-ups, twelve unknowns each (two rotation vectors, two translations):

* eye-to-hand (camera fixed above the bin, board held by the gripper): unknowns base <- camera
  and gripper <- board; view i sees camera <- board = (base <- camera)^-1 (base <- gripper_i)
  (gripper <- board).
* eye-in-hand (camera on the gripper, board fixed in the cell): unknowns gripper <- camera and
  base <- board; view i sees camera <- board = (gripper <- camera)^-1 (base <- gripper_i)^-1
  (base <- board).

The camera transform is parameterised as a small rotation (rotation vector, in the robot
frame, left of the start rotation) and a translation in the robot frame, so the covariance of
the translation block is directly the camera position's covariance in robot millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation
from scipy.stats import chi2

from edge.geometry import CameraModel, RigidTransform

HAND_EYE_METHODS = {
    "TSAI": cv2.CALIB_HAND_EYE_TSAI,
    "PARK": cv2.CALIB_HAND_EYE_PARK,
    "HORAUD": cv2.CALIB_HAND_EYE_HORAUD,
    "ANDREFF": cv2.CALIB_HAND_EYE_ANDREFF,
    "DANIILIDIS": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
SETUPS = ("eye-to-hand", "eye-in-hand")
POSE_ERRORS = ("exact", "estimate")  # the robot's poses taken as given, or each corrected (module doc)
DEFAULT_TOLERANCE_MM = 2.0  # predicted RMS error at the pick plane, the touch-point fit's RMS limit too
RECOMMENDED_MIN_POSES = 15  # below this the wizard warns (docs/calibration.md "Poses")
BOUND_SIGMA_FACTOR = 3.0  # the reported bound: 3 sigma along the worst direction (99.7 % of one axis)
# A pose whose correction is this unlikely under the estimated spreads (chi-square, 6 degrees of
# freedom, 1 in 1000) is named: one bad pose among 40 should be checked, not averaged in.
POSE_OUTLIER_CHI2 = float(chi2.ppf(0.999, 6))
ORIENTATION_WARN_DEG = 4.0  # PnP of a small board gives its rotation to 1-2 deg; a view off by more is named


class HandEyeError(ValueError):
    """Hand-eye cannot be solved from this material; the message says what to add or fix."""


@dataclass(frozen=True)
class BoardView:
    """One robot pose and the board corners seen at it."""

    name: str
    base_from_gripper: RigidTransform
    object_points: np.ndarray  # (N, 3) board frame, mm
    image_points: np.ndarray  # (N, 2) pixels


@dataclass(frozen=True)
class PoseErrorEstimate:
    """What the refinement with robot pose errors found: the spreads and each view's correction."""

    corrected_rms_px: float  # board-corner reprojection RMS (2-D) with each pose corrected
    corner_sigma_px: float  # board-corner detection, 1 sigma per image coordinate
    translation_sigma_mm: float  # robot pose translation error, 1 sigma per axis
    rotation_sigma_deg: float  # robot pose rotation error, 1 sigma per axis
    corrections: dict[str, tuple[float, float]]  # view -> its correction: |translation| mm, |rotation| deg
    converged: bool  # the variance factors settled (within 5 % of 1) in the rounds allowed

    def unlikeliness(self, name: str) -> float:
        """The view's correction over the estimated spreads, squared: chi-square, 6 degrees of freedom."""
        t, r = self.corrections[name]
        return (t / self.translation_sigma_mm) ** 2 + (r / self.rotation_sigma_deg) ** 2

    def report(self) -> dict:
        return {
            "corrected_rms_px": round(self.corrected_rms_px, 4),
            "corner_sigma_px": round(self.corner_sigma_px, 4),
            "robot_translation_sigma_mm": round(self.translation_sigma_mm, 4),
            "robot_rotation_sigma_deg": round(self.rotation_sigma_deg, 5),
            "corrections": {k: [round(t, 4), round(r, 5)] for k, (t, r) in self.corrections.items()},
            "converged": self.converged,
        }


@dataclass
class HandEyeResult:
    setup: str
    method: str
    robot_from_camera: RigidTransform  # eye-to-hand: base <- camera; eye-in-hand: gripper <- camera
    board_transform: RigidTransform  # eye-to-hand: gripper <- board; eye-in-hand: base <- board
    closed_form: RigidTransform  # the closed form's camera transform, the refinement's start
    consistency_rms_mm: float  # closed form: spread of the board in the gripper (base) frame
    rms_px: float  # refined: board-corner reprojection RMS over all views
    rms_mm: float  # the same residuals in mm on the board (pixels times the board's distance / focal length)
    per_view_px: dict[str, float]
    # (12, 12) s^2 (J^T J)^-1, or with pose errors estimated the weighted (J^T W J)^-1;
    # order: camera rotvec (rad), t (mm), board ditto
    covariance_corner: np.ndarray
    covariance_view: np.ndarray  # (12, 12) the same Jacobian, errors correlated within a view (sandwich)
    max_rotation_deg: float
    axis_spread: float  # 0 = all relative rotations about one axis (degenerate), 1 = well spread
    tolerance_mm: float = DEFAULT_TOLERANCE_MM
    check_points: list[dict] = field(default_factory=list)  # predicted error at pick-plane points
    warnings: list[str] = field(default_factory=list)
    turned_views: list[str] = field(
        default_factory=list
    )  # symmetric board: views numbered from the other end
    pose_errors: PoseErrorEstimate | None = None  # pose_errors="estimate": the robot's estimated errors

    @property
    def covariances(self) -> tuple[np.ndarray, np.ndarray]:
        return self.covariance_corner, self.covariance_view

    @property
    def camera_position_sigma_mm(self) -> np.ndarray:
        """1-sigma of the camera position along the robot (gripper) frame's x, y, z (the larger model)."""
        return np.max([np.sqrt(np.clip(np.diag(c)[3:6], 0.0, None)) for c in self.covariances], axis=0)

    @property
    def camera_rotation_sigma_deg(self) -> np.ndarray:
        """1-sigma of the camera rotation about the robot (gripper) frame's x, y, z (the larger model)."""
        return np.degrees(
            np.max([np.sqrt(np.clip(np.diag(c)[0:3], 0.0, None)) for c in self.covariances], axis=0)
        )

    @property
    def refinement_shift_mm(self) -> float:
        """How far the refinement moved the camera from the closed form's answer."""
        return float(np.linalg.norm(self.robot_from_camera.translation - self.closed_form.translation))

    def point_sigma_mm(self, points_camera: np.ndarray, covariance: np.ndarray | None = None) -> np.ndarray:
        """(N, 3) 1-sigma semi-axes (largest first, mm) of camera-frame points mapped into the robot frame.

        X p = R p + t with R = exp(w) R0: d(X p) = -[R p]x dw + dt, so the point's covariance is
        J C J^T with J = [-[R p]x, I] and C the camera block of the covariance. Without a
        covariance given, each point gets the larger of the two models' answers.
        """
        if covariance is None:
            return np.maximum(*(self.point_sigma_mm(points_camera, c) for c in self.covariances))
        pts = np.asarray(points_camera, np.float64).reshape(-1, 3)
        mapped = (self.robot_from_camera.rotation @ pts.T).T
        block = covariance[:6, :6]
        out = []
        for q in mapped:
            jac = np.hstack([-_skew(q), np.eye(3)])
            eig = np.linalg.eigvalsh(jac @ block @ jac.T)
            out.append(np.sqrt(np.clip(eig, 0.0, None))[::-1])
        return np.array(out)

    def predict_at(self, labelled_points_camera: dict[str, np.ndarray]) -> None:
        """Record each point's predicted RMS error (decides) and its 3-sigma worst-direction bound."""
        names = list(labelled_points_camera)
        sig = self.point_sigma_mm(np.array([labelled_points_camera[n] for n in names]))
        self.check_points = [
            {
                "name": n,
                "camera_mm": [round(float(x), 3) for x in labelled_points_camera[n]],
                "sigma_mm": [round(float(x), 4) for x in s],
                "predicted_error_mm": round(float(np.sqrt(np.sum(np.square(s)))), 4),
                "bound_3sigma_mm": round(float(BOUND_SIGMA_FACTOR * s[0]), 4),
            }
            for n, s in zip(names, sig, strict=True)
        ]

    def _worst(self, key: str) -> float:
        if not self.check_points:
            raise HandEyeError("no pick-plane points given: call predict_at first")
        return max(p[key] for p in self.check_points)

    @property
    def predicted_error_mm(self) -> float:
        """RMS 3-D error at the worst check point: the expected miss there (module doc)."""
        return self._worst("predicted_error_mm")

    @property
    def bound_3sigma_mm(self) -> float:
        """3-sigma along the worst direction at the worst check point: reported, not decided on."""
        return self._worst("bound_3sigma_mm")

    @property
    def passed(self) -> bool:
        return self.predicted_error_mm <= self.tolerance_mm

    def report(self) -> dict:
        """The calibration file's "hand_eye" section."""
        return {
            "setup": self.setup,
            "method": self.method,
            "refinement": "joint LM on the board-corner reprojection error, intrinsics fixed"
            + (", each robot pose corrected (variance components)" if self.pose_errors else ""),
            "pose_errors": "estimate" if self.pose_errors else "exact",
            "robot_pose_errors": self.pose_errors.report() if self.pose_errors else None,
            "matrix": self.robot_from_camera.matrix().tolist(),
            "board_matrix": self.board_transform.matrix().tolist(),
            "closed_form_matrix": self.closed_form.matrix().tolist(),
            "closed_form_shift_mm": round(self.refinement_shift_mm, 4),
            "consistency_rms_mm": round(self.consistency_rms_mm, 4),
            "rms_px": round(self.rms_px, 4),
            "rms_mm": round(self.rms_mm, 4),
            "per_view_px": {k: round(v, 4) for k, v in self.per_view_px.items()},
            "camera_position_sigma_mm": [round(float(x), 4) for x in self.camera_position_sigma_mm],
            "camera_rotation_sigma_deg": [round(float(x), 5) for x in self.camera_rotation_sigma_deg],
            "camera_position_sigma_corner_mm": _sigmas(self.covariance_corner, 3),
            "camera_position_sigma_view_mm": _sigmas(self.covariance_view, 3),
            "covariance_corner": np.round(self.covariance_corner, 12).tolist(),
            "covariance_view": np.round(self.covariance_view, 12).tolist(),
            "covariance_order": "camera rotvec (rad), camera t (mm), board rotvec (rad), board t (mm)",
            "check_points": self.check_points,
            "predicted_error": "RMS 3-D error at the worst check point (decides)",
            "predicted_error_mm": round(self.predicted_error_mm, 4) if self.check_points else None,
            "bound_3sigma_mm": round(self.bound_3sigma_mm, 4) if self.check_points else None,
            "tolerance_mm": self.tolerance_mm,
            "passed": self.passed if self.check_points else None,
            "max_rotation_deg": round(self.max_rotation_deg, 2),
            "axis_spread": round(self.axis_spread, 3),
            "turned_views": self.turned_views,
            "warnings": self.warnings,
        }


def rotation_from_quaternion(q_xyzw: np.ndarray) -> np.ndarray:
    """3x3 rotation of a unit quaternion in ROS order (x, y, z, w), as robot SDKs export poses."""
    return Rotation.from_quat(np.asarray(q_xyzw, np.float64)).as_matrix()


def _sigmas(covariance: np.ndarray, start: int) -> list[float]:
    return [round(float(x), 4) for x in np.sqrt(np.clip(np.diag(covariance)[start : start + 3], 0.0, None))]


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def rotation_diversity(rotations: list[np.ndarray]) -> tuple[float, float]:
    """Largest relative rotation (deg) between poses and how spread the relative rotation axes are.

    Hand-eye needs relative motions about at least two non-parallel axes; rotating about one
    axis only leaves the translation along it undetermined whatever the solver.
    """
    angles, axes = [], []
    for i in range(len(rotations)):
        for j in range(i + 1, len(rotations)):
            rvec, _ = cv2.Rodrigues(rotations[i].T @ rotations[j])
            angle = float(np.linalg.norm(rvec))
            angles.append(np.degrees(angle))
            if angle > np.radians(2.0):
                axes.append(rvec.ravel() / angle)
    if len(axes) < 2:
        return (max(angles) if angles else 0.0), 0.0
    singular = np.linalg.svd(np.array(axes), compute_uv=False)
    return float(max(angles)), float(singular[1] / singular[0])


def nearest_rotation(m: np.ndarray) -> np.ndarray:
    """The rotation (orthonormal, determinant +1) nearest a 3x3 matrix in the Frobenius norm (SVD).

    A mirror image (determinant -1) is orthonormal too: its nearest rotation flips the axis of
    the smallest singular value, never returning the mirror image itself.
    """
    u, _, vt = np.linalg.svd(np.asarray(m, dtype=np.float64))
    r = u @ vt
    if np.linalg.det(r) < 0:
        r = u @ np.diag([1.0, 1.0, -1.0]) @ vt
    return r


def _mean_transform(transforms: list[RigidTransform]) -> RigidTransform:
    """Chordal mean: the rotation nearest the mean matrix (SVD), the mean translation."""
    r = nearest_rotation(np.mean([t.rotation for t in transforms], axis=0))
    return RigidTransform(r, np.mean([t.translation for t in transforms], axis=0))


def board_pose(view: BoardView, camera: CameraModel) -> RigidTransform:
    """camera <- board of one view (IPPE, refined by LM), the closed form's input."""
    obj = view.object_points.astype(np.float64).reshape(-1, 1, 3)
    img = view.image_points.astype(np.float64).reshape(-1, 1, 2)
    ok, rvec, tvec = cv2.solvePnP(obj, img, camera.camera_matrix, camera.dist_coeffs, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise HandEyeError(f"{view.name}: no board pose (solvePnP): check the intrinsics and the board file")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, camera.camera_matrix, camera.dist_coeffs, rvec, tvec)
    return RigidTransform.from_rvec_tvec(rvec, tvec)


def _rotation_angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (deg) of a[i]^T b[j] for stacks of rotations a (n, 3, 3) and b (m, 3, 3): (n, m)."""
    trace = np.einsum("nki,mki->nm", a, b)
    return np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0)))


def orient_views(
    views: list[BoardView], boards: list[RigidTransform], turn: RigidTransform
) -> tuple[list[BoardView], list[RigidTransform], list[str], list[str]]:
    """Number the corners of a board that looks the same turned by 180 degrees consistently in every view.

    A chessboard with both inner-corner counts odd or both even can be found from either end:
    the detector numbers it as it comes, so some views see the board frame turned by 180
    degrees (`turn`: the board-frame transform taking each corner to the one it is confused
    with) and no hand-eye solution fits those views. The robot poses settle it without knowing
    the camera: the angle of the board's rotation between two views equals the angle of the
    gripper's rotation between them (A X = X B keeps rotation angles, in both set-ups), and a
    wrongly numbered view is off by up to 180 degrees. Each view takes the numbering whose
    angles agree best (median over the other views) with the robot's, repeated until no view
    changes. One numbering for all views is then fixed up to one common turn, which the board
    transform (an unknown) absorbs.

    Returns the views (object points turned where needed), their camera <- board poses, the
    names of the turned views, and warnings for views that agree with neither numbering.
    """
    n = len(views)
    grippers = np.array([v.base_from_gripper.rotation for v in views])
    robot = _rotation_angles_deg(grippers, grippers)
    options = [
        np.array([b.rotation.T for b in boards]),  # seen as numbered: board <- camera rotations
        np.array([b.compose(turn).rotation.T for b in boards]),  # numbered from the other end
    ]
    off_diagonal = ~np.eye(n, dtype=bool)
    labels = np.zeros(n, dtype=int)
    costs = np.zeros((n, 2))
    for _ in range(2 * n):
        current = np.where(labels[:, None, None] == 1, options[1], options[0])
        for k in (0, 1):
            # angle of (board_i <- camera)^T (board_j <- camera) = rotation from view j to view i
            mismatch = np.abs(_rotation_angles_deg(current, options[k]) - robot)
            costs[:, k] = [np.median(mismatch[off_diagonal[:, j], j]) for j in range(n)]
        new = np.argmin(costs, axis=1)
        if np.array_equal(new, labels):
            break
        # change only the view that gains most, so that the votes of the others stay meaningful
        gain = costs[np.arange(n), labels] - costs[np.arange(n), new]
        worst = int(np.argmax(gain))
        labels[worst] = new[worst]
    out_views, out_boards, turned, warnings = [], [], [], []
    for view, board, label, cost in zip(views, boards, labels, costs, strict=True):
        if label:
            view = BoardView(
                view.name, view.base_from_gripper, turn.apply(view.object_points), view.image_points
            )
            board = board.compose(turn)
            turned.append(view.name)
        out_views.append(view)
        out_boards.append(board)
        if cost[label] > ORIENTATION_WARN_DEG:
            warnings.append(
                f"{view.name}: the board's rotation from the other views disagrees with the robot's by "
                f"{cost[label]:.1f} degrees (median): is this the image of this pose?"
            )
    return out_views, out_boards, turned, warnings


def closed_form(
    setup: str, base_from_gripper: list[RigidTransform], camera_from_board: list[RigidTransform], method: str
) -> tuple[RigidTransform, RigidTransform, float, list[str]]:
    """OpenCV's closed form: (camera transform, board transform, spread of the board estimates in
    mm, warnings).

    calibrateHandEye solves eye-in-hand; passing gripper <- base instead of base <- gripper turns
    it into eye-to-hand, and its "camera to gripper" answer becomes camera to base (OpenCV
    documents this substitution).

    Park's method returns (M^T M)^-1/2 M^T without checking its determinant: when the robot's
    rotations and the board's disagree (angles in radians under rpy_deg, images matched to the
    wrong poses) it is a mirror image (determinant -1), which the refinement, rotating its start
    by a rotation vector, would keep, and the calibration file refuses. The start is then the
    nearest rotation, and a warning says why.
    """
    motion = base_from_gripper if setup == "eye-in-hand" else [g.inverse() for g in base_from_gripper]
    r, t = cv2.calibrateHandEye(
        [m.rotation for m in motion],
        [m.translation.reshape(3, 1) for m in motion],
        [c.rotation for c in camera_from_board],
        [c.translation.reshape(3, 1) for c in camera_from_board],
        method=HAND_EYE_METHODS[method],
    )
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
        raise HandEyeError(
            f"the closed form ({method}) found no solution from these poses: the gripper must rotate about "
            "at least two different axes between poses (tilt it, not only turn it)"
        )
    warnings = []
    if np.linalg.det(r) < 0 or np.abs(r.T @ r - np.eye(3)).max() > 1e-9:
        warnings.append(
            f"the closed form ({method}) is not a rotation (determinant {np.linalg.det(r):+.2f}): the "
            "robot's rotations and the board's disagree; check the poses' angle unit and order and that "
            "each image belongs to its pose (the refinement started from the nearest rotation)"
        )
        r = nearest_rotation(r)
    cam = RigidTransform(r, t.ravel())
    # eye-to-hand: gripper <- board = (gripper <- base) X C_i; eye-in-hand: base <- board = G_i X C_i
    boards = [m.compose(cam).compose(c) for m, c in zip(motion, camera_from_board, strict=True)]
    spread_pts = np.array([b.translation for b in boards])
    spread = float(np.sqrt(np.mean(np.sum((spread_pts - spread_pts.mean(axis=0)) ** 2, axis=1))))
    return cam, _mean_transform(boards), spread, warnings


def _camera_from_board(
    setup: str, camera: RigidTransform, board: RigidTransform, g: RigidTransform
) -> RigidTransform:
    if setup == "eye-to-hand":
        return camera.inverse().compose(g).compose(board)
    return camera.inverse().compose(g.inverse()).compose(board)


def _view_residuals(
    setup: str,
    view: BoardView,
    camera: CameraModel,
    cam: RigidTransform,
    board: RigidTransform,
    base_from_gripper: RigidTransform,
) -> np.ndarray:
    """Reprojection residuals (px, x/y interleaved) of one view's corners through the two transforms."""
    cb = _camera_from_board(setup, cam, board, base_from_gripper)
    rvec, _ = cv2.Rodrigues(cb.rotation)
    proj, _ = cv2.projectPoints(
        view.object_points.astype(np.float64).reshape(-1, 1, 3),
        rvec,
        cb.translation,
        camera.camera_matrix,
        camera.dist_coeffs,
    )
    return (proj.reshape(-1, 2) - view.image_points.reshape(-1, 2)).ravel()


def _residuals(
    setup: str, views: list[BoardView], camera: CameraModel, cam: RigidTransform, board: RigidTransform
) -> np.ndarray:
    """All views' residuals (px) against the robot's poses as given."""
    return np.concatenate([_view_residuals(setup, v, camera, cam, board, v.base_from_gripper) for v in views])


def _apply(
    params: np.ndarray, start_cam: RigidTransform, start_board: RigidTransform
) -> tuple[RigidTransform, RigidTransform]:
    cam = RigidTransform(
        cv2.Rodrigues(params[0:3])[0] @ start_cam.rotation, start_cam.translation + params[3:6]
    )
    board = RigidTransform(
        cv2.Rodrigues(params[6:9])[0] @ start_board.rotation, start_board.translation + params[9:12]
    )
    return cam, board


def refine(
    setup: str,
    views: list[BoardView],
    camera: CameraModel,
    start_cam: RigidTransform,
    start_board: RigidTransform,
) -> tuple[RigidTransform, RigidTransform, np.ndarray, np.ndarray, np.ndarray]:
    """Joint LM over all views on the reprojection error.

    Returns camera, board, residuals (px, x/y interleaved) and two covariances of the 12
    parameters: s^2 (J^T J)^-1 (independent corner errors) and the view-clustered sandwich form.
    """

    def residuals(params: np.ndarray) -> np.ndarray:
        return _residuals(setup, views, camera, *_apply(params, start_cam, start_board))

    solution = least_squares(residuals, np.zeros(12), method="lm", x_scale="jac", xtol=1e-12, ftol=1e-12)
    res, jac = solution.fun, solution.jac
    dof = max(len(res) - 12, 1)
    bread = normal_inverse(jac)
    corner = float(res @ res) / dof * bread  # s^2 (J^T J)^-1: independent corner errors
    # Robot pose errors move a whole view's board at once: its corners' errors are correlated,
    # which s^2 (J^T J)^-1 ignores (measured: it understates the error 7-11x with 1 mm / 0.1-0.2 deg
    # of pose noise). The cluster-robust ("sandwich") form from the same Jacobian treats each
    # view as one independent sample.
    offsets = np.cumsum([0] + [2 * len(v.object_points) for v in views])
    per_view = _view_clustered(
        bread, jac, res, [np.arange(offsets[i], offsets[i + 1]) for i in range(len(views))]
    )
    cam, board = _apply(solution.x, start_cam, start_board)
    return cam, board, res, corner, per_view


# A scaled Jacobian with a singular value this small against its largest: parameters the
# photos and poses do not determine (double precision keeps ~16 digits, the squares ~8).
DEGENERATE_CONDITION = 1e-10


def normal_inverse(jac: np.ndarray) -> np.ndarray:
    """(J^T J)^-1 with J's columns scaled to unit length first, by SVD.

    Not pinv(J^T J): the columns mix radians and millimetres, and a wrong pose set (angles in
    radians under rpy_deg) drives one rotation column to ~1e10 px/rad; pinv's cut-off, relative
    to the largest singular value, then zeroed every translation direction and reported a
    camera position 1-sigma of 0.00 mm beside a 59 px reprojection. Scaled, the inverse is the
    same in any units, and a direction truly undetermined gets a huge variance, not zero.
    """
    norms = np.linalg.norm(jac, axis=0)
    norms[norms == 0] = 1.0  # a parameter nothing depends on: its singular value is 0, clamped below
    _, singular, vt = np.linalg.svd(jac / norms, full_matrices=False)
    # An undetermined direction gets a huge variance (it fails the step's tolerance) instead of
    # an infinite one, which no report or JSON file could carry.
    singular = np.maximum(singular, DEGENERATE_CONDITION * singular[0])
    scaled = (vt.T / singular**2) @ vt
    return scaled / np.outer(norms, norms)


def _view_clustered(
    bread: np.ndarray, jac: np.ndarray, res: np.ndarray, clusters: list[np.ndarray]
) -> np.ndarray:
    """The cluster-robust ("sandwich") covariance B (sum over clusters of J_c^T r_c r_c^T J_c) B,
    scaled by m/(m-1) for m clusters: each cluster (a view's rows) one independent sample."""
    meat = np.zeros_like(bread)
    for rows in clusters:
        g = jac[rows].T @ res[rows]
        meat += np.outer(g, g)
    m = len(clusters)
    return m / max(m - 1, 1) * bread @ meat @ bread


_FD_STEP = np.array([1e-7, 1e-7, 1e-7, 1e-5, 1e-5, 1e-5])  # rad, mm: forward differences
# px, mm, rad: a spread that is not there creeps towards 0 round after round; at its floor it has settled
_SIGMA_FLOOR = np.array([0.01, 0.02, np.radians(0.002)])
_VARIANCE_ROUNDS = 15
_VARIANCE_SETTLED = 0.05  # every variance factor within 5 % of 1


def _corrected(g: RigidTransform, delta: np.ndarray) -> RigidTransform:
    """The robot pose with a correction: rotation vector (base frame, left) and translation (mm)."""
    return RigidTransform(cv2.Rodrigues(delta[:3])[0] @ g.rotation, g.translation + delta[3:6])


def refine_with_pose_errors(
    setup: str,
    views: list[BoardView],
    camera: CameraModel,
    start_cam: RigidTransform,
    start_board: RigidTransform,
) -> tuple[RigidTransform, RigidTransform, np.ndarray, np.ndarray, PoseErrorEstimate]:
    """Joint refinement with each robot pose corrected, the error spreads estimated (module doc).

    Unknowns: the 12 of `refine` and 6 per view (rotation vector, translation of the view's
    base <- gripper). Observations: the corners (sigma_px) and the corrections' zero prior
    (sigma_t, sigma_r). Each round solves the weighted problem (LM) and rescales each group's
    sigma by its residual sum of squares over its redundancy (number of observations minus the
    trace of their block of the hat matrix), until the variance factors are within 5 % of 1;
    the covariance and the reported sigmas are those of the last solve, so they belong together
    even where the rounds run out. The Jacobian is built view by view (a view depends on the 12
    and its own 6), which keeps a 40-view set to seconds. Returns camera, board, the 12-parameter
    covariance from the weighted normal matrix and its view-clustered sandwich form (each view's
    corners and its correction's prior rows as one sample: without the prior rows a view's
    correction absorbs its own error and the form understates it 4x), and the
    `PoseErrorEstimate`.
    """
    m = len(views)
    sizes = [2 * len(v.object_points) for v in views]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    npx = int(offsets[-1])
    steps = np.concatenate([_FD_STEP, _FD_STEP])

    def view_residuals(i: int, transforms: tuple, delta: np.ndarray) -> np.ndarray:
        pose = _corrected(views[i].base_from_gripper, delta)
        return _view_residuals(setup, views[i], camera, *transforms, pose)

    def corner_residuals(x: np.ndarray) -> np.ndarray:
        transforms = _apply(x[:12], start_cam, start_board)
        return np.concatenate([view_residuals(i, transforms, x[12 + 6 * i : 18 + 6 * i]) for i in range(m)])

    def corner_jacobian(x: np.ndarray) -> np.ndarray:
        jac = np.zeros((npx, 12 + 6 * m))
        deltas = [x[12 + 6 * i : 18 + 6 * i] for i in range(m)]
        transforms = _apply(x[:12], start_cam, start_board)
        base = [view_residuals(i, transforms, deltas[i]) for i in range(m)]
        for k in range(12):  # a shared unknown moves every view
            params = x[:12].copy()
            params[k] += steps[k]
            moved = _apply(params, start_cam, start_board)
            for i in range(m):
                change = view_residuals(i, moved, deltas[i]) - base[i]
                jac[offsets[i] : offsets[i + 1], k] = change / steps[k]
        for i in range(m):  # a view's correction moves that view only
            for k in range(6):
                delta = deltas[i].copy()
                delta[k] += _FD_STEP[k]
                change = view_residuals(i, transforms, delta) - base[i]
                jac[offsets[i] : offsets[i + 1], 12 + 6 * i + k] = change / _FD_STEP[k]
        return jac

    prior_rows = np.hstack([np.zeros((6 * m, 12)), np.eye(6 * m)])
    groups = (
        np.arange(npx),  # corners
        npx + (np.arange(6 * m).reshape(m, 6)[:, 3:]).ravel(),  # pose translations
        npx + (np.arange(6 * m).reshape(m, 6)[:, :3]).ravel(),  # pose rotations
    )
    sigma = np.array([0.5, 1.0, np.radians(0.1)])  # px, mm, rad: a start; the rounds estimate them
    x = np.zeros(12 + 6 * m)
    converged = False
    for _ in range(_VARIANCE_ROUNDS):
        weights = np.concatenate(
            [np.full(npx, 1.0 / sigma[0]), np.tile([1.0 / sigma[2]] * 3 + [1.0 / sigma[1]] * 3, m)]
        )
        solution = least_squares(
            lambda p, w=weights: np.concatenate([corner_residuals(p), p[12:]]) * w,
            x,
            jac=lambda p, w=weights: np.vstack([corner_jacobian(p), prior_rows]) * w[:, None],
            method="lm",
            x_scale="jac",
            xtol=1e-10,
            ftol=1e-10,
        )
        x, jac, res = solution.x, solution.jac, solution.fun
        inverse = normal_inverse(jac)
        hat = np.einsum("ij,jk,ik->i", jac, inverse, jac)
        factors = np.array([float(res[g] @ res[g]) / max(len(g) - float(hat[g].sum()), 1e-9) for g in groups])
        updated = np.maximum(sigma * np.sqrt(factors), _SIGMA_FLOOR)
        if np.all((np.abs(factors - 1.0) < _VARIANCE_SETTLED) | (updated == _SIGMA_FLOOR)):
            converged = True
            break
        sigma = updated
    cov = inverse[:12, :12]  # weighted with the sigmas reported: no further scaling
    clusters = [
        np.concatenate([np.arange(offsets[i], offsets[i + 1]), npx + np.arange(6 * i, 6 * i + 6)])
        for i in range(m)
    ]
    per_view = _view_clustered(inverse, jac, res, clusters)[:12, :12]
    corrections = {
        v.name: (
            float(np.linalg.norm(x[15 + 6 * i : 18 + 6 * i])),
            float(np.degrees(np.linalg.norm(x[12 + 6 * i : 15 + 6 * i]))),
        )
        for i, v in enumerate(views)
    }
    corrected = corner_residuals(x)
    estimate = PoseErrorEstimate(
        corrected_rms_px=float(np.sqrt(np.mean(corrected**2) * 2)),
        corner_sigma_px=float(sigma[0]),
        translation_sigma_mm=float(sigma[1]),
        rotation_sigma_deg=float(np.degrees(sigma[2])),
        corrections=corrections,
        converged=converged,
    )
    cam, board = _apply(x[:12], start_cam, start_board)
    return cam, board, cov, per_view, estimate


def _unlikely_poses(estimate: PoseErrorEstimate) -> list[str]:
    """Warnings naming the views whose pose correction is far beyond the others' spread."""
    out = []
    for name, (t, r) in estimate.corrections.items():
        if estimate.unlikeliness(name) > POSE_OUTLIER_CHI2:
            out.append(
                f"{name}: the photo puts this robot pose {t:.1f} mm and {r:.2f} deg from where the robot "
                f"said, far beyond the other poses' spread ({estimate.translation_sigma_mm:.2f} mm, "
                f"{estimate.rotation_sigma_deg:.3f} deg per axis): check this pose and its image"
            )
    return out


def calibrate_hand_eye(
    views: list[BoardView],
    camera: CameraModel,
    setup: str = "eye-to-hand",
    method: str = "PARK",
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    min_rotation_deg: float = 20.0,
    min_axis_spread: float = 0.3,
    min_poses: int = RECOMMENDED_MIN_POSES,
    symmetric_turn: RigidTransform | None = None,
    pose_errors: str = "exact",
) -> HandEyeResult:
    """Closed form, then the joint reprojection refinement and its covariance (see the module doc).

    `pose_errors="estimate"` continues from that refinement with each robot pose corrected
    (`refine_with_pose_errors`); its camera and covariances are the result's, the residuals
    (`rms_px`, `per_view_px`) those of its camera against the poses as given.

    `symmetric_turn`, for a board that looks the same turned by 180 degrees, is the board-frame
    transform taking each corner to the one it is confused with; the views' numbering is then
    made consistent from the robot poses first (`orient_views`).
    """
    if setup not in SETUPS:
        raise HandEyeError(f"hand-eye set-up {setup!r} unknown; choose one of {', '.join(SETUPS)}")
    if method not in HAND_EYE_METHODS:
        raise HandEyeError(f"hand-eye method {method!r} unknown; choose one of {', '.join(HAND_EYE_METHODS)}")
    if pose_errors not in POSE_ERRORS:
        raise HandEyeError(
            f"robot pose errors {pose_errors!r} unknown; choose one of {', '.join(POSE_ERRORS)}"
        )
    if len(views) < 3:
        raise HandEyeError(
            f"hand-eye needs at least 3 robot poses, each with a board image, got {len(views)}"
        )
    boards = [board_pose(v, camera) for v in views]
    turned: list[str] = []
    warnings: list[str] = []
    if symmetric_turn is not None:
        views, boards, turned, warnings = orient_views(views, boards, symmetric_turn)
    grippers = [v.base_from_gripper for v in views]
    start_cam, start_board, spread, start_warnings = closed_form(setup, grippers, boards, method)
    warnings.extend(start_warnings)
    cam, board, res, cov_corner, cov_view = refine(setup, views, camera, start_cam, start_board)
    estimate = None
    if pose_errors == "estimate":
        cam, board, cov_corner, cov_view, estimate = refine_with_pose_errors(setup, views, camera, cam, board)
        warnings.extend(_unlikely_poses(estimate))
        # the residuals against the poses as the robot gave them, as in the default: the worst
        # views are still the ones to look at, and the figure compares with a default run
        res = _residuals(setup, views, camera, cam, board)
    per_view, offset, in_mm = {}, 0, []
    focal = float(np.sqrt(camera.camera_matrix[0, 0] * camera.camera_matrix[1, 1]))
    for v in views:
        n = 2 * len(v.object_points)
        per_view[v.name] = float(np.sqrt(np.mean(res[offset : offset + n] ** 2) * 2))
        seen = _camera_from_board(setup, cam, board, v.base_from_gripper).apply(
            v.object_points.astype(np.float64)
        )
        in_mm.append(res[offset : offset + n] * float(np.median(seen[:, 2])) / focal)
        offset += n
    rms = float(np.sqrt(np.mean(res**2) * 2))
    rms_mm = float(np.sqrt(np.mean(np.concatenate(in_mm) ** 2) * 2))
    max_rot, axis_spread = rotation_diversity([g.rotation for g in grippers])
    if max_rot < min_rotation_deg:
        warnings.append(
            f"poses differ by at most {max_rot:.0f} degrees of rotation (< {min_rotation_deg:g}): "
            "tilt the gripper more between poses"
        )
    if axis_spread < min_axis_spread:
        warnings.append("the poses rotate about (almost) one axis only: add poses tilted about another axis")
    if len(views) < min_poses:
        warnings.append(
            f"{len(views)} robot poses (at least {min_poses} recommended): with fewer, the camera's "
            "uncertainty rests on few views and one bad pose weighs heavily; add poses"
        )
    return HandEyeResult(
        setup=setup,
        method=method,
        robot_from_camera=cam,
        board_transform=board,
        closed_form=start_cam,
        consistency_rms_mm=spread,
        rms_px=rms,
        rms_mm=rms_mm,
        per_view_px=per_view,
        covariance_corner=cov_corner,
        covariance_view=cov_view,
        max_rotation_deg=max_rot,
        axis_spread=axis_spread,
        tolerance_mm=tolerance_mm,
        warnings=warnings,
        turned_views=turned,
        pose_errors=estimate,
    )


def plane_points_camera(
    camera: CameraModel, camera_from_plane: RigidTransform, pixels: dict[str, tuple[float, float]]
) -> dict[str, np.ndarray]:
    """Camera-frame points where the rays of `pixels` meet the plane z = 0 of `camera_from_plane`."""
    normal = camera_from_plane.rotation[:, 2]
    d = float(normal @ camera_from_plane.translation)
    rays = camera.pixels_to_rays(np.array(list(pixels.values()), np.float64))
    out = {}
    for name, ray in zip(pixels, rays, strict=True):
        denom = float(normal @ ray)
        if abs(denom) > 1e-12 and d / denom > 0:
            out[name] = ray * (d / denom)
    return out
