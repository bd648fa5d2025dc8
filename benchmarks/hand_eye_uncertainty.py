"""How honest is the hand-eye refinement's predicted error? Synthetic eye-to-hand sets, truth known.

For each set (views x robot pose noise) the closed form (Park) and the joint reprojection
refinement are run on board corners projected through the test camera (0.3 px corner noise),
and the error they put on the bin floor (the image's corners and centre, 700 mm below the
camera) is compared with the refinement's 1-sigma prediction from s^2 (J^T J)^-1 (independent
corners) and from the view-clustered form. Prints one row per set and the machine.

    PYTHONPATH=tests python -m benchmarks.hand_eye_uncertainty
"""

from __future__ import annotations

import numpy as np
from synthetic_board_views import TEST_CAMERA
from test_calibration_hand_eye import floor_points_camera, make_views

from benchmarks.machine_info import machine_line
from edge.wizard.hand_eye import calibrate_hand_eye


def main() -> None:
    print(machine_line("opencv-python-headless", "scipy"))
    print("views  pose noise        floor error mm (actual)   1-sigma predicted mm   closed-form spread")
    print("                         refined   closed form     corners   per view     mm")
    for count in (12, 16, 30):
        for robot_mm, robot_deg in ((0.0, 0.0), (1.0, 0.0), (0.0, 0.1), (1.0, 0.2)):
            views, truth = make_views("eye-to-hand", 99, count=count, robot_mm=robot_mm, robot_deg=robot_deg)
            result = calibrate_hand_eye(views, TEST_CAMERA, "eye-to-hand")
            floor = floor_points_camera(truth)
            actual = np.linalg.norm(result.robot_from_camera.apply(floor) - truth.apply(floor), axis=1).max()
            closed = np.linalg.norm(result.closed_form.apply(floor) - truth.apply(floor), axis=1).max()
            corner = result.point_sigma_mm(floor, result.covariance_corner)[:, 0].max()
            view = result.point_sigma_mm(floor, result.covariance_view)[:, 0].max()
            print(
                f"{count:5d}  {robot_mm:3.1f} mm {robot_deg:3.1f} deg   {actual:7.2f}   {closed:7.2f}"
                f"        {corner:7.2f}   {view:7.2f}      {result.consistency_rms_mm:6.2f}"
            )


if __name__ == "__main__":
    main()
