"""`binpick quantize` input checks: a corrupt calibration frame is named, not an OpenCV assertion."""

from __future__ import annotations

import pytest
from appliance_helpers import tiny_model

from binpick_core.model_file import read_model_info


def test_a_corrupt_calibration_frame_is_named(tmp_path):
    pytest.importorskip("onnx")
    from bicameral.quantize import calibration_frames

    info = read_model_info(tiny_model(tmp_path, 64, 64))
    frame = tmp_path / "data" / "scenes" / "000000" / "rgb.png"
    frame.parent.mkdir(parents=True)
    frame.write_bytes(b"not a PNG")
    with pytest.raises(ValueError, match=f"{frame} is not a readable image"):
        calibration_frames(tmp_path / "data", info, 1, (64, 64))
