"""The bin (the "load carrier"): where the product may be picked, and how full the bin is.

Commissioning records the empty bin once (`binpick bin`, `edge.commands.bin`): its interior
polygon in camera pixels (given, or found by `detect`: with depth, the floor inside the rim's
outline), an empty-bin reference frame and, with a depth camera, the floor
plane. Every cycle then (`BinStage.observe`):

1. locates the bin in the frame (`locate`: ECC registration of the rim's edges, or of the
   height map's with depth, against the reference; a bin not found fails the cycle with
   `bin_missing`), and moves the interior with it;
2. marks the floor (`floor`: within `floor_tolerance_mm` of the floor plane with depth; else
   the pixels that still look like the empty bin, by normalised cross-correlation, which a
   change of lighting gain or offset does not fool);
3. measures the fill level (share of the interior that is not floor; with depth, the mean pile
   height) and keeps the `bin_empty` signal with hysteresis (`fill.EmptyBinTracker`);
4. gives the grasp planner a filter (`BinView.keep`) that drops candidates mostly on the floor,
   grasps outside the interior and grasps closer to a wall than the gripper radius plus margin
   (with depth, judged where each point stands on the floor: `edge.ranking.floor_feet`).

Pure NumPy and OpenCV: the appliance installs it without the factory.
"""

from edge.bin_model.commission import commission_bin
from edge.bin_model.detect import DetectedInterior, detect_interior
from edge.bin_model.fill import EmptyBinTracker, FillLevel, fill_level
from edge.bin_model.floor import (
    FloorPlane,
    fit_floor_plane,
    floor_from_height,
    floor_from_reference,
    height_above_floor_mm,
)
from edge.bin_model.locate import BinPose, locate_bin
from edge.bin_model.model import BinModel, BinModelError, interior_mask, load_bin_model, save_bin_model
from edge.bin_model.stage import BinMissing, BinStage, BinView, Reachable

__all__ = [
    "BinMissing", "BinModel", "BinModelError", "BinPose", "BinStage", "BinView", "EmptyBinTracker",
    "Reachable",
    "commission_bin", "DetectedInterior", "detect_interior",
    "FillLevel", "FloorPlane", "fill_level", "fit_floor_plane", "floor_from_height",
    "floor_from_reference", "height_above_floor_mm", "interior_mask", "load_bin_model", "locate_bin",
    "save_bin_model",
]  # fmt: skip
