"""The technician calibration wizard (`binpick calibrate`): one module per step (`step_*.py`), the
conversation they share (`prompts.py`), and the measurements they call (`boards`, `views`,
`intrinsics`, `robot`, `hand_eye`, `robot_registers`, `capture`)."""
