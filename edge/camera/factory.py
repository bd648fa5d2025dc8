"""Choose the camera source named by `[camera] source`."""

from __future__ import annotations

from edge.camera.base import CameraSource
from edge.config import CameraSection


def open_camera(cfg: CameraSection) -> CameraSource:
    """Build (not yet open) the configured source."""
    if cfg.source == "simulated":
        from edge.camera.simulated import SimulatedBin

        return SimulatedBin(cfg.preset, cfg.width, cfg.height, cfg.seed, cfg.simulated_depth)
    if cfg.source == "folder":
        from edge.camera.folder_source import FolderSource

        return FolderSource(cfg.folder, cfg.pattern, cfg.loop, cfg.depth_suffix, cfg.depth_unit_mm)
    if cfg.source == "opencv":
        from edge.camera.opencv_source import opencv_source

        return opencv_source(cfg.uri, cfg.timeout_s, cfg.backoff_initial_s, cfg.backoff_max_s)
    if cfg.source == "genicam":
        from edge.camera.genicam import genicam_source

        return genicam_source(cfg.cti, cfg.serial, cfg.timeout_s, cfg.backoff_initial_s, cfg.backoff_max_s)
    if cfg.source in ("realsense", "orbbec"):
        from edge.camera import depth_cameras

        backoff = (cfg.backoff_initial_s, cfg.backoff_max_s)
        if cfg.source == "realsense":
            return depth_cameras.realsense_source(cfg.serial, cfg.width, cfg.height, cfg.timeout_s, backoff)
        return depth_cameras.orbbec_source(cfg.serial, cfg.timeout_s, backoff)
    raise ValueError(
        f"camera.source = {cfg.source!r}: expected simulated, folder, opencv, genicam, realsense or orbbec"
    )
