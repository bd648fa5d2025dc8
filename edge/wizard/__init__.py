"""Steps of the technician calibration wizard (`binpick calibrate`): boards, views, intrinsics, robot."""
