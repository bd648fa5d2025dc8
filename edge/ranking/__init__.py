"""The ranking-and-grasp core: from a frame's boundary and occlusion maps to the robot's grasp.

A leaf of the appliance (an import-linter contract in pyproject.toml keeps it one): it imports
neither the supervisor, the PLC, the camera nor the factory, so the appliance, the simulated
cell and the benchmarks all run the same rules.

- `params`: `RankingParams`, whose limits are the hot path's (`binpick::validate`);
- `result`: `Candidate`, `Grasp`, `Ranking` and the native table's columns;
- `native`: `rank` (the C++ hot path) and `grasp_point`; `cuda`: its GPU twin;
- `reference`: the readable NumPy twin the tests compare against;
- `occluding_side`, `pick_feedback`, `selection`: which candidate the cell should try;
- `plan`: `plan_grasp`, the grasp in camera pixels and robot millimetres (`plan_raised_grasp`: on a
  region of depth alone, `raised`, when the network's candidates give none).
"""

from edge.ranking.native import binarise, grasp_point, rank
from edge.ranking.params import AREA_GATE, SCORES, RankingParams
from edge.ranking.plan import PickGeometry, PlannedGrasp, plan_grasp, plan_raised_grasp
from edge.ranking.result import CANDIDATE_FIELDS, Candidate, Grasp, Ranking

__all__ = [
    "AREA_GATE", "CANDIDATE_FIELDS", "SCORES", "Candidate", "Grasp", "PickGeometry", "PlannedGrasp",
    "Ranking", "RankingParams", "binarise", "grasp_point", "plan_grasp", "plan_raised_grasp", "rank",
]  # fmt: skip
