"""Pixel <-> robot geometry for a single top camera looking at a bin.

One camera gives a ray per pixel, not a point. Following the thesis (Section 5.3.1), depth
comes from intersecting that ray with a plane parallel to the bin floor: the pick plane. This
module is the only place that does the chain

    pixel --(intrinsics, distortion)--> undistorted ray in the camera frame
          --(camera->robot rigid transform)--> ray in the robot frame
          --(pick plane)--> 3D point in millimetres, robot frame

and its inverse, so the wizard that measures the calibration and the appliance that uses it
cannot disagree. Everything is in millimetres; pixel coordinates are (u, v) with u the column.

Conventions:
- `T_robot_camera` maps camera-frame points to robot-frame points: X_r = R @ X_c + t.
- A plane is `n . X = d` in the robot frame with `n` a unit normal pointing towards the camera,
  so a positive height offset moves the plane up towards the camera (onto the pile).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# undistortPoints' default stops after 5 iterations, which leaves tenths of a pixel of error at
# the image corners of wide lenses; iterate until the correction is negligible instead.
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
OUTLINE_STEP_MM = 10.0  # a bin's walls sampled this finely, so a wall the lens bends is followed
MAX_WALL_MM = 100_000.0  # a longer wall is a typing error, not a bin (and 10^4 samples at most)
LENS_ROUND_TRIP = 1e-4  # normalised image units: projected then undistorted, a valid point comes back


class GeometryError(ValueError):
    """A geometric request that has no answer (ray parallel to the plane, point behind camera)."""


@dataclass(frozen=True)
class CameraModel:
    """OpenCV pinhole camera: 3x3 matrix, distortion coefficients and the image size it holds for."""

    camera_matrix: np.ndarray  # 3x3
    dist_coeffs: np.ndarray  # (k,) with k in {0, 4, 5, 8, 12, 14}
    image_size: tuple[int, int]  # (width, height)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "camera_matrix", np.asarray(self.camera_matrix, dtype=np.float64).reshape(3, 3)
        )
        object.__setattr__(self, "dist_coeffs", np.asarray(self.dist_coeffs, dtype=np.float64).ravel())
        object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))

    def pixels_to_rays(self, uv: np.ndarray) -> np.ndarray:
        """Undistorted viewing directions (x, y, 1) in the camera frame for Nx2 pixels."""
        pts = np.asarray(uv, dtype=np.float64).reshape(-1, 1, 2)
        normalized = cv2.undistortPointsIter(
            pts, self.camera_matrix, self.dist_coeffs, None, None, _UNDISTORT_CRITERIA
        ).reshape(-1, 2)
        return np.column_stack([normalized, np.ones(len(normalized))])

    def project(self, points_camera: np.ndarray) -> np.ndarray:
        """Nx2 distorted pixels of Nx3 camera-frame points (all must lie in front of the camera)."""
        pts = np.asarray(points_camera, dtype=np.float64).reshape(-1, 3)
        if np.any(pts[:, 2] <= 0):
            raise GeometryError("point is behind the camera (z <= 0 in the camera frame)")
        zero = np.zeros(3)
        uv, _ = cv2.projectPoints(pts, zero, zero, self.camera_matrix, self.dist_coeffs)
        return uv.reshape(-1, 2)


@dataclass(frozen=True)
class RigidTransform:
    """Rotation + translation (mm); `apply` maps points of the source frame into the target frame."""

    rotation: np.ndarray  # 3x3, orthonormal, det +1
    translation: np.ndarray  # (3,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rotation", np.asarray(self.rotation, dtype=np.float64).reshape(3, 3))
        object.__setattr__(self, "translation", np.asarray(self.translation, dtype=np.float64).reshape(3))

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> RigidTransform:
        m = np.asarray(matrix, dtype=np.float64).reshape(4, 4)
        return cls(m[:3, :3], m[:3, 3])

    @classmethod
    def from_rvec_tvec(cls, rvec: np.ndarray, tvec: np.ndarray) -> RigidTransform:
        rotation, _ = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3, 1))
        return cls(rotation, np.asarray(tvec, dtype=np.float64).reshape(3))

    def matrix(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.translation
        return m

    def apply(self, points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, dtype=np.float64)
        return pts @ self.rotation.T + self.translation

    def inverse(self) -> RigidTransform:
        return RigidTransform(self.rotation.T, -self.rotation.T @ self.translation)

    def compose(self, other: RigidTransform) -> RigidTransform:
        """self ∘ other: first `other`, then `self`."""
        return RigidTransform(
            self.rotation @ other.rotation, self.rotation @ other.translation + self.translation
        )


@dataclass(frozen=True)
class Plane:
    """`normal . X = offset` (robot frame, mm), unit normal."""

    normal: np.ndarray
    offset: float

    def __post_init__(self) -> None:
        n = np.asarray(self.normal, dtype=np.float64).reshape(3)
        norm = float(np.linalg.norm(n))
        if not np.isfinite(norm) or norm < 1e-9:
            raise GeometryError("plane normal must be a non-zero finite vector")
        object.__setattr__(self, "normal", n / norm)
        object.__setattr__(self, "offset", float(self.offset) / norm)

    @classmethod
    def from_point_normal(cls, point: np.ndarray, normal: np.ndarray) -> Plane:
        n = np.asarray(normal, dtype=np.float64).reshape(3)
        n = n / np.linalg.norm(n)
        return cls(n, float(n @ np.asarray(point, dtype=np.float64).reshape(3)))

    def shifted(self, distance_mm: float) -> Plane:
        """The parallel plane `distance_mm` further along the normal (towards the camera)."""
        return Plane(self.normal, self.offset + float(distance_mm))

    def facing(self, viewpoint: np.ndarray) -> Plane:
        """The same plane with its normal oriented towards `viewpoint`."""
        if float(self.normal @ np.asarray(viewpoint, dtype=np.float64)) - self.offset >= 0:
            return self
        return Plane(-self.normal, -self.offset)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) @ self.normal - self.offset


def fit_plane(points: np.ndarray) -> Plane:
    """Least-squares plane through Nx3 points (N >= 3, not collinear)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(pts) < 3:
        raise GeometryError(f"a plane needs at least 3 points, got {len(pts)}")
    centroid = pts.mean(axis=0)
    _, singular, vt = np.linalg.svd(pts - centroid)
    if singular[1] < 1e-6 * max(singular[0], 1e-12):
        raise GeometryError("points are collinear: they do not define a plane")
    return Plane.from_point_normal(centroid, vt[2])


def fit_rigid_transform(source: np.ndarray, target: np.ndarray) -> RigidTransform:
    """Least-squares rotation + translation taking Nx3 `source` onto `target` (Kabsch/Umeyama, no scale).

    Written out rather than cv2.estimateAffine3D because that one fits a general affine map (or a
    similarity with scale) and robot calibration must not absorb a scale error silently.
    """
    src = np.asarray(source, dtype=np.float64).reshape(-1, 3)
    dst = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    if src.shape != dst.shape:
        raise GeometryError(f"point sets differ in size: {len(src)} vs {len(dst)}")
    if len(src) < 3:
        raise GeometryError(f"a rigid fit needs at least 3 point pairs, got {len(src)}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - src_mean, dst - dst_mean
    if np.linalg.svd(a, compute_uv=False)[1] < 1e-6 * max(np.linalg.norm(a), 1e-12):
        raise GeometryError("the points are collinear: the rotation about their line is undetermined")
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return RigidTransform(rotation, dst_mean - rotation @ src_mean)


class PixelToRobot:
    """Pixel <-> robot mapping through a pick plane; the one mapping the wizard and appliance share."""

    def __init__(self, camera: CameraModel, robot_from_camera: RigidTransform, plane: Plane):
        self.camera = camera
        self.robot_from_camera = robot_from_camera
        self.camera_from_robot = robot_from_camera.inverse()
        self.camera_centre = robot_from_camera.translation.copy()
        self.plane = plane.facing(self.camera_centre)
        if self.plane.signed_distance(self.camera_centre) < 1e-6:
            raise GeometryError("the camera lies on the pick plane: no pixel can be mapped")

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """Unit viewing directions of Nx2 pixels, in the robot frame."""
        directions = self.camera.pixels_to_rays(uv) @ self.robot_from_camera.rotation.T
        return directions / np.linalg.norm(directions, axis=1, keepdims=True)

    def pixels_to_robot(self, uv: np.ndarray, height_mm: float = 0.0) -> np.ndarray:
        """Nx3 robot-frame points (mm) where the pixels' rays meet the plane raised by `height_mm`."""
        plane = self.plane.shifted(height_mm)
        directions = self.rays(uv)
        along = directions @ plane.normal
        gap = plane.offset - self.camera_centre @ plane.normal
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = gap / along
        if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
            raise GeometryError(
                f"a pixel's ray does not meet the pick plane in front of the camera (height {height_mm} mm)"
            )
        return self.camera_centre + directions * scale[:, None]

    def pixel_to_robot(self, u: float, v: float, height_mm: float = 0.0) -> np.ndarray:
        return self.pixels_to_robot(np.array([[u, v]], dtype=np.float64), height_mm)[0]

    def robots_to_pixels(self, xyz_mm: np.ndarray) -> np.ndarray:
        """Nx2 pixels of Nx3 robot-frame points."""
        return self.camera.project(
            self.camera_from_robot.apply(np.asarray(xyz_mm, dtype=np.float64).reshape(-1, 3))
        )

    def robot_to_pixel(self, xyz_mm: np.ndarray) -> tuple[float, float]:
        u, v = self.robots_to_pixels(np.asarray(xyz_mm, dtype=np.float64).reshape(1, 3))[0]
        return float(u), float(v)

    def outline_to_pixels(self, corners_mm: np.ndarray) -> np.ndarray:
        """The closed outline through robot-frame corners (N x 3, in order) as an image polygon.

        Why not the corners' pixels alone: a bin larger than the view has corners outside the
        picture, and the lens bends the straight walls between them, so a chord between two
        projected corners cuts into the bin or leaves part of it out. Each wall is sampled every
        `OUTLINE_STEP_MM` from its corner (the first vertex of each wall is that corner) and
        every sample projected. Refused, naming the corner (GeometryError): fewer than 3
        corners, an outline that crosses itself (corners out of order), a wall longer than
        `MAX_WALL_MM` (a typing error; sampling it would take unbounded memory), a corner or a
        wall behind the camera, a sample whose pixel is not finite (in the camera's own plane),
        and a sample where the lens model does not hold (so far outside the view that the
        distortion polynomial folds back: projected and undistorted, the point does not come back).
        """
        corners = np.asarray(corners_mm, dtype=np.float64).reshape(-1, 3)
        if len(corners) < 3:
            raise GeometryError(f"{len(corners)} bin corner(s): at least 3 are needed")

        def named(i: int) -> str:
            return _corner(corners, i)

        with np.errstate(over="ignore", invalid="ignore"):
            lengths = np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1)
        too_long = np.nonzero(~(lengths <= MAX_WALL_MM))[0]
        if len(too_long):
            raise GeometryError(
                f"the wall from {named(int(too_long[0]))} is longer than {MAX_WALL_MM / 1000:g} m: "
                "expected robot-frame mm of the bin floor's corners"
            )
        problem = crossing_problem(corners)
        if problem:
            raise GeometryError(problem)
        samples, owner, starts = [], [], []
        for i, (a, b) in enumerate(zip(corners, np.roll(corners, -1, axis=0), strict=True)):
            steps = max(1, int(np.ceil(lengths[i] / OUTLINE_STEP_MM)))
            starts.append(len(owner))
            samples.append(a + (b - a) * (np.arange(steps) / steps)[:, None])
            owner += [i] * steps
        points = self.camera_from_robot.apply(np.vstack(samples))

        behind = np.nonzero(points[starts, 2] <= 0)[0]  # a corner first, then a wall between two
        if len(behind):
            raise GeometryError(
                f"{named(int(behind[0]))} lies behind the camera: expected robot-frame mm of the bin "
                "floor's corners, in the frame the calibration uses"
            )
        behind = np.nonzero(points[:, 2] <= 0)[0]
        if len(behind):
            raise GeometryError(
                f"the wall from {named(owner[int(behind[0])])} passes behind the camera: expected "
                "robot-frame mm of the bin floor's corners, in the frame the calibration uses"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            pixels = self.camera.project(points)
        infinite = np.nonzero(~np.all(np.isfinite(pixels), axis=1))[0]
        if len(infinite):
            raise GeometryError(
                f"the wall from {named(owner[int(infinite[0])])} reaches the camera's own plane (no "
                "finite pixel): expected robot-frame mm of the bin floor's corners, below the camera"
            )
        back = self.camera.pixels_to_rays(pixels)[:, :2]
        off = np.linalg.norm(back - points[:, :2] / points[:, 2:3], axis=1)
        folded = np.nonzero(~(off <= LENS_ROUND_TRIP))[0]
        if len(folded):
            raise GeometryError(
                f"the wall from {named(owner[int(folded[0])])} reaches where the lens model does not "
                "hold (too far outside the view for its distortion coefficients): give the interior "
                "in pixels, or corners nearer the view"
            )
        return pixels

    def mm_per_pixel_at(self, u: float, v: float, height_mm: float = 0.0) -> float:
        """Side of the square (mm) one pixel covers on the plane here: sqrt of the footprint area.

        Perspective and distortion make this vary across the image, so extents in pixels are
        converted with the scale at the grasp point, not with one global number.
        """
        h = 0.5
        pts = self.pixels_to_robot(np.array([[u - h, v], [u + h, v], [u, v - h], [u, v + h]]), height_mm)
        area = np.linalg.norm(np.cross(pts[1] - pts[0], pts[3] - pts[2]))
        return float(np.sqrt(area))


def crossing_edges(polygon: np.ndarray) -> tuple[int, int] | None:
    """The first two non-adjacent edges of the closed polygon (N x 2) that cross, as the indices
    of their first corners (edge i runs from corner i to the next), or None. Corners given out of
    order make a bow tie: an outline of two triangles meeting where it crosses, not the bin's floor.
    Each edge against all later ones at once: a calibration's ROI may be a sampled outline of
    thousands of points (`outline_to_pixels`)."""
    starts = np.asarray(polygon, dtype=np.float64)[:, :2]
    ends = np.roll(starts, -1, axis=0)
    n = len(starts)

    def side(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Which side of the line p -> q `r` lies on: the sign of the cross product."""
        u, v = q - p, r - p
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    for i in range(n - 2):
        later = np.arange(i + 2, n - 1 if i == 0 else n)  # not edge i's neighbours (the closing one)
        a, b, c, d = starts[i], ends[i], starts[later], ends[later]
        hit = (side(a, b, c) * side(a, b, d) < 0) & (side(c, d, a) * side(c, d, b) < 0)
        if hit.any():
            return i, int(later[np.argmax(hit)])
    return None


def crossing_problem(corners: np.ndarray | list[list[float]]) -> str:
    """Why the closed outline through `corners` (N x 2 pixels, or N x 3 robot mm checked in x, y)
    cannot be a region ("" when it can): the two edges that cross, each by its corners, numbered
    from 1 as they were given. The one check for every outline typed in by hand."""
    corners = np.asarray(corners, dtype=np.float64)
    crossing = crossing_edges(corners[:, :2])
    if crossing is None:
        return ""

    def edge(i: int) -> str:
        k = (i + 1) % len(corners)
        return f"{_corner(corners, i)} to {_corner(corners, k)}"

    first, second = crossing
    return (
        f"the outline crosses itself: the edge from {edge(first)} crosses the edge from {edge(second)}; "
        "expected the corners in order around the bin"
    )


def _corner(corners: np.ndarray, i: int) -> str:
    return f"corner {i + 1} ({', '.join(f'{x:g}' for x in corners[i])})"
