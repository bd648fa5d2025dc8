"""Pixel <-> robot geometry: round trips, plane intersection, rigid fit."""

import cv2
import numpy as np
import pytest

from edge.geometry import (
    CameraModel,
    GeometryError,
    PixelToRobot,
    Plane,
    RigidTransform,
    fit_plane,
    fit_rigid_transform,
)


def look_down_transform(
    height_mm: float = 900.0, yaw_deg: float = 20.0, tilt_deg: float = 8.0
) -> RigidTransform:
    """Robot <- camera for a camera above the floor (z up), optical axis pointing down, slightly tilted."""
    down = np.diag([1.0, -1.0, -1.0])  # camera z -> robot -z
    yaw, _ = cv2.Rodrigues(np.array([0.0, 0.0, np.radians(yaw_deg)]))
    tilt, _ = cv2.Rodrigues(np.array([np.radians(tilt_deg), 0.0, 0.0]))
    return RigidTransform(yaw @ tilt @ down, np.array([350.0, -120.0, height_mm]))


@pytest.fixture
def mapping() -> PixelToRobot:
    k = np.array([[1100.0, 0, 700.0], [0, 1102.0, 420.0], [0, 0, 1]])  # principal point off-centre
    camera = CameraModel(k, np.array([-0.21, 0.09, 0.001, -0.0015, -0.02]), (1280, 960))
    floor = Plane([0.0, 0.0, 1.0], 35.0)  # bin floor at z = 35 mm
    return PixelToRobot(camera, look_down_transform(), floor)


def grid(w=1280, h=960, n=9):
    us, vs = np.meshgrid(np.linspace(0, w - 1, n), np.linspace(0, h - 1, n))
    return np.column_stack([us.ravel(), vs.ravel()])


def test_pixel_robot_pixel_round_trip_across_the_image(mapping):
    uv = grid()
    for height in (0.0, 80.0):
        xyz = mapping.pixels_to_robot(uv, height_mm=height)
        np.testing.assert_allclose(xyz[:, 2], 35.0 + height, atol=1e-9)
        np.testing.assert_allclose(mapping.robots_to_pixels(xyz), uv, atol=1e-6)


def test_robot_pixel_robot_round_trip(mapping):
    rng = np.random.default_rng(1)
    xyz = np.column_stack([rng.uniform(100, 600, 50), rng.uniform(-400, 150, 50), np.full(50, 35.0)])
    uv = mapping.robots_to_pixels(xyz)
    np.testing.assert_allclose(mapping.pixels_to_robot(uv), xyz, atol=1e-6)
    u, v = mapping.robot_to_pixel(xyz[0])
    np.testing.assert_allclose(mapping.pixel_to_robot(u, v), xyz[0], atol=1e-6)


def test_principal_point_ray_hits_the_point_below_the_camera_axis():
    camera = CameraModel(np.array([[800.0, 0, 320], [0, 800, 240], [0, 0, 1]]), np.zeros(5), (640, 480))
    straight_down = RigidTransform(np.diag([1.0, -1.0, -1.0]), [10.0, 20.0, 1000.0])
    m = PixelToRobot(camera, straight_down, Plane([0, 0, 1], 0.0))
    np.testing.assert_allclose(m.pixel_to_robot(320, 240), [10.0, 20.0, 0.0], atol=1e-9)
    # 1 px at 1000 mm with f = 800 px covers 1.25 mm
    assert m.mm_per_pixel_at(320, 240) == pytest.approx(1.25, rel=1e-6)
    assert m.mm_per_pixel_at(320, 240, height_mm=200.0) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(m.pixel_to_robot(420, 240), [10.0 + 125.0, 20.0, 0.0], atol=1e-9)


def test_plane_normal_orientation_does_not_matter(mapping):
    flipped = PixelToRobot(mapping.camera, mapping.robot_from_camera, Plane([0, 0, -1.0], -35.0))
    np.testing.assert_allclose(flipped.pixel_to_robot(100, 200, 50.0), mapping.pixel_to_robot(100, 200, 50.0))


def test_ray_that_misses_the_plane_is_an_error():
    camera = CameraModel(np.array([[800.0, 0, 320], [0, 800, 240], [0, 0, 1]]), np.zeros(4), (640, 480))
    horizontal = RigidTransform(cv2.Rodrigues(np.array([np.pi / 2, 0, 0]))[0], [0, 0, 100.0])
    m = PixelToRobot(camera, horizontal, Plane([0, 0, 1], 0.0))
    with pytest.raises(GeometryError):
        m.pixel_to_robot(320, 470)  # camera y maps to robot +z: the lower image half looks up
    with pytest.raises(GeometryError):
        PixelToRobot(camera, horizontal, Plane([0, 0, 1], 100.0))  # camera on the plane


def test_point_behind_camera_is_an_error(mapping):
    with pytest.raises(GeometryError, match="behind"):
        mapping.robot_to_pixel([350.0, -120.0, 2000.0])


def test_rigid_fit_recovers_transform_and_refuses_degenerate_sets():
    rng = np.random.default_rng(7)
    truth = look_down_transform()
    src = rng.uniform(-200, 200, (6, 3))
    fit = fit_rigid_transform(src, truth.apply(src))
    np.testing.assert_allclose(fit.matrix(), truth.matrix(), atol=1e-9)
    # mirrored data must still give a proper rotation
    assert np.linalg.det(fit_rigid_transform(src, src * [1, 1, -1]).rotation) == pytest.approx(1.0)
    with pytest.raises(GeometryError, match="at least 3"):
        fit_rigid_transform(src[:2], src[:2])
    line = np.outer(np.arange(4.0), [1.0, 2.0, 3.0])
    with pytest.raises(GeometryError, match="collinear"):
        fit_rigid_transform(line, line)


def test_transform_inverse_and_compose():
    t = look_down_transform()
    np.testing.assert_allclose(t.compose(t.inverse()).matrix(), np.eye(4), atol=1e-12)
    np.testing.assert_allclose(RigidTransform.from_matrix(t.matrix()).matrix(), t.matrix())


def test_fit_plane():
    rng = np.random.default_rng(3)
    xy = rng.uniform(-100, 100, (20, 2))
    pts = np.column_stack([xy, 0.1 * xy[:, 0] + 50.0])
    plane = fit_plane(pts)
    assert np.abs(plane.signed_distance(pts)).max() < 1e-9
    with pytest.raises(GeometryError):
        fit_plane(pts[:2])


def test_outline_refuses_absurd_corners_naming_the_corner(mapping):
    """A typo of 1e308 used to end in OverflowError, 1e10 in a 30 GB allocation."""
    for far in (1e308, 1e7):
        corners = np.array([[far, 0.0, 35.0], [0.0, far, 35.0], [0.0, 0.0, 35.0]])
        with pytest.raises(GeometryError, match=r"wall from corner 1 .* longer than 100 m"):
            mapping.outline_to_pixels(corners)


def test_outline_refuses_a_wall_with_no_finite_pixel_naming_the_corner():
    """A wall in the camera's own plane (z = 1e-310 in front of it) projects to infinity."""
    camera = CameraModel(np.array([[600.0, 0, 320.0], [0, 600.0, 240.0], [0, 0, 1]]), np.zeros(5), (640, 480))
    mapping = PixelToRobot(camera, RigidTransform(np.eye(3), np.zeros(3)), Plane([0.0, 0.0, 1.0], 500.0))
    corners = np.array([[0.0, 0.0, 500.0], [100.0, 0.0, 500.0], [100.0, 100.0, 1e-310], [0.0, 100.0, 500.0]])
    with pytest.raises(GeometryError, match=r"corner 3 \(100, 100, 1e-310\) reaches the camera's own plane"):
        mapping.outline_to_pixels(corners)
