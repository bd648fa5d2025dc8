"""Instance-level scores on Mikado ground truth: what decides whether a pick succeeds.

For each frame the inferred maps go through the appliance's own ranking (`edge.ranking.rank`,
the native hot path), and its candidates are compared with the true instances:

- *best-candidate success*: the best-ranked candidate overlaps an *unoccluded* instance (occlusion
  rate below 5 %) with IoU >= 0.5 against that instance's visible mask;
- *mean candidate IoU*: each candidate's IoU with the instance it overlaps best, averaged over all
  candidates of all frames (how well candidates fit real objects at all).

Frames where the ranking finds no candidate count as failures; they add no IoU values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edge.ranking import Ranking, RankingParams

UNOCCLUDED_RATE = 0.05
MATCH_IOU = 0.5


def load_ranking() -> tuple[Callable[..., Ranking], type[RankingParams]]:
    """`edge.ranking.rank` and `RankingParams`, or an ImportError saying how to get them."""
    try:
        from edge.ranking import RankingParams, rank
    except ImportError as exc:  # the native module is built by `pip install .` or build_native_inplace
        raise ImportError(
            f"instance-level evaluation needs the native hot path edge._hotpath ({exc}); "
            "install the project (pip install .) or run scripts/build_native_inplace.sh"
        ) from exc
    return rank, RankingParams


def instance_ious(labels: np.ndarray, candidate_labels: np.ndarray, candidates: list[int]) -> np.ndarray:
    """IoU matrix (candidates × instances) between ranking labels and ground-truth instances.

    `labels`: ground-truth instance ids (0 background); `candidate_labels`: the ranking's label
    image, candidates identified by their label values in `candidates`. One joint histogram gives
    every intersection, so the cost does not grow with candidates × instances × pixels.
    """
    instance_ids = np.unique(labels)
    instance_ids = instance_ids[instance_ids > 0]
    if not candidates or instance_ids.size == 0:
        return np.zeros((len(candidates), instance_ids.size))
    cand_index = np.full(int(candidate_labels.max()) + 1, -1, np.int64)
    cand_index[np.asarray(candidates)] = np.arange(len(candidates))
    inst_index = np.full(int(labels.max()) + 1, -1, np.int64)
    inst_index[instance_ids] = np.arange(instance_ids.size)
    c = cand_index[np.clip(candidate_labels, 0, None)]
    i = inst_index[labels]
    both = (c >= 0) & (i >= 0)
    inter = np.zeros((len(candidates), instance_ids.size))
    np.add.at(inter, (c[both], i[both]), 1)
    cand_area = np.bincount(c[c >= 0], minlength=len(candidates)).astype(np.float64)
    inst_area = np.bincount(i[i >= 0], minlength=instance_ids.size).astype(np.float64)
    union = cand_area[:, None] + inst_area[None, :] - inter
    return inter / np.maximum(union, 1.0)


@dataclass
class InstanceScores:
    frames: int
    best_candidate_success: float  # fraction of frames
    mean_candidate_iou: float
    mean_candidates_per_frame: float
    frames_without_candidate: int

    def to_dict(self) -> dict:
        return asdict(self)


class InstanceAccumulator:
    """Feeds each frame through the ranking and keeps the running instance-level scores."""

    def __init__(self, params: RankingParams | None = None) -> None:
        self._rank, params_type = load_ranking()
        self.params = params if params is not None else params_type()
        self.successes = 0
        self.frames = 0
        self.empty = 0
        self.ious: list[float] = []
        self.candidate_count = 0

    def add(
        self, boundaries: np.ndarray, occlusions: np.ndarray, labels: np.ndarray, instances: list[dict]
    ) -> None:
        """One frame: probability maps, ground-truth label image, scene.json `instances`."""
        ranking = self._rank(
            np.ascontiguousarray(boundaries, np.float32),
            np.ascontiguousarray(occlusions, np.float32),
            self.params,
            return_labels=True,
        )
        self.frames += 1
        candidates = [c.label for c in ranking.candidates]
        self.candidate_count += len(candidates)
        if not candidates:
            self.empty += 1
            return
        ious = instance_ious(labels, ranking.labels, candidates)
        if ious.shape[1] == 0:
            self.ious += [0.0] * len(candidates)
            return
        self.ious += ious.max(axis=1).tolist()
        ids = np.unique(labels)
        ids = ids[ids > 0]
        rate = {int(inst["id"]): float(inst.get("occlusion_rate", 1.0)) for inst in instances}
        unoccluded = np.array([rate.get(int(k), 1.0) < UNOCCLUDED_RATE for k in ids])
        best = ious[0]  # candidates are best first
        if np.any((best >= MATCH_IOU) & unoccluded):
            self.successes += 1

    def scores(self) -> InstanceScores:
        frames = max(self.frames, 1)
        return InstanceScores(
            frames=self.frames,
            best_candidate_success=self.successes / frames,
            mean_candidate_iou=float(np.mean(self.ious)) if self.ious else 0.0,
            mean_candidates_per_frame=self.candidate_count / frames,
            frames_without_candidate=self.empty,
        )
