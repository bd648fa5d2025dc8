"""The thesis's three questions per attempt (Figure 5.12) and its metrics (Table C.2).

The thesis's observers answered by eye; here the simulator's ground truth answers, with these
written-down rules (`Thresholds`):

Q1 "Is the extraction successful?": count the instances that left the bin (centre of mass above
   the rim after the lift and hold): 1 -> "yes", 0 -> "no", more -> "more" (more than one
   instance). Only "yes" is a success: an industrial cell that drops two sachets on a one-sachet
   conveyor place has failed.
Q2 "Is the grasp centred on the instance?": at the pixel where the cup touched (the contact
   point projected into the frame the decision was made on), inside the cup's projected disc:
   - "between" (between two instances) when the second most frequent instance covers at least
     `between_fraction` of the disc;
   - otherwise the detected instance is the one under the cup centre (or the disc's majority
     when the centre is on the bin); "yes" when the contact lies in the inner part of its visible
     region: distance to the region's border >= `centred_ratio` x the region's largest such
     distance; "no" otherwise, and "no" when no instance is under the cup at all.
Q3 "Is the detected instance occluded?": share of its amodal silhouette covered by OTHER
   instances in that frame (the bin's walls and the image border do not count):
   < `weak_occlusion` -> "none", < `high_occlusion` -> "weak", else "high"; "-" when Q2 found no
   single instance (between two, or nothing), as the thesis's observers left it blank.

Metrics, as fractions like Table C.3 (S = successes, F = failures = NO - S, "well detected" =
centred and not occluded at all): SR = S/NO; MV = F_well/F; SV = (S + F_well)/NO;
SC = S_centred/S; SNO = S_not-occluded/S; FNC = F_not-centred/F (Q2 "no" or "between");
FO = F_occluded/F (Q3 "weak" or "high").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import cv2
import numpy as np

Q1 = ("yes", "no", "more")
Q2 = ("yes", "no", "between")
Q3 = ("none", "weak", "high", "-")
METRICS = ("NO", "NS", "SR", "MV", "SV", "SC", "SNO", "FNC", "FO")


@dataclass(frozen=True)
class Thresholds:
    between_fraction: float = 0.2
    centred_ratio: float = 0.5
    weak_occlusion: float = 0.05
    high_occlusion: float = 0.3

    def to_dict(self) -> dict:
        return asdict(self)


def extraction_answer(extracted: Iterable[int]) -> str:
    n = len(list(extracted))
    return "yes" if n == 1 else ("no" if n == 0 else "more")


def disc_mask(shape: tuple[int, int], uv: tuple[float, float], radius_px: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, (round(uv[0]), round(uv[1])), max(1, round(radius_px)), 1, -1)
    return mask.astype(bool)


def grasp_answers(
    labels: np.ndarray,
    uv: tuple[float, float],
    radius_px: float,
    amodal_of: Callable[[int], np.ndarray],
    thresholds: Thresholds = Thresholds(),
) -> tuple[str, str, int, float]:
    """(Q2, Q3, detected instance id or 0, occlusion share) for a touch at pixel `uv`."""
    h, w = labels.shape
    disc = disc_mask((h, w), uv, radius_px)
    ids, counts = np.unique(labels[disc], return_counts=True)
    keep = ids != 0
    ids, counts = ids[keep], counts[keep]
    total = int(disc.sum())
    order = np.argsort(-counts, kind="stable")
    if len(ids) >= 2 and counts[order[1]] >= thresholds.between_fraction * total:
        return "between", "-", 0, float("nan")
    u, v = round(uv[0]), round(uv[1])
    inside = 0 <= u < w and 0 <= v < h
    detected = int(labels[v, u]) if inside else 0
    if detected == 0:
        if len(ids) == 0:
            return "no", "-", 0, float("nan")
        detected = int(ids[order[0]])
    visible = (labels == detected).astype(np.uint8)
    dist = cv2.distanceTransform(np.pad(visible, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    here = float(dist[v, u]) if inside else 0.0
    centred = "yes" if here >= thresholds.centred_ratio * float(dist.max()) else "no"
    amodal = amodal_of(detected) | visible.astype(bool)
    covered = amodal & (labels != 0) & (labels != detected)
    share = float(covered.sum()) / max(1, int(amodal.sum()))
    if share < thresholds.weak_occlusion:
        occluded = "none"
    elif share < thresholds.high_occlusion:
        occluded = "weak"
    else:
        occluded = "high"
    return centred, occluded, detected, share


def metrics(records: list[dict]) -> dict[str, float]:
    """Table C.2 over attempt records (keys q1, q2, q3, sequence, seed: runs of several base seeds
    pooled share sequence names, not piles)."""
    n = len(records)
    success = [r for r in records if r["q1"] == "yes"]
    failure = [r for r in records if r["q1"] != "yes"]
    s, f = len(success), len(failure)
    well = [r for r in failure if r["q2"] == "yes" and r["q3"] == "none"]

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    return {
        "NO": n,
        "NS": len({(r["sequence"], r.get("seed")) for r in records}),  # a pile: its name and seed
        "SR": ratio(s, n),
        "MV": ratio(len(well), f),
        "SV": ratio(s + len(well), n),
        "SC": ratio(sum(r["q2"] == "yes" for r in success), s),
        "SNO": ratio(sum(r["q3"] == "none" for r in success), s),
        "FNC": ratio(sum(r["q2"] != "yes" for r in failure), f),
        "FO": ratio(sum(r["q3"] in ("weak", "high") for r in failure), f),
    }


def picks_per_minute(records: list[dict], robot_motion_s: float) -> float:
    """Successful picks per minute of a cell whose cycle is vision time + robot motion time.

    The vision time is the appliance's measured latency (or the baseline's own compute time);
    rendering and physics are the simulator's cost, not the cell's, and are left out.
    """
    if not records:
        return float("nan")
    seconds = sum(r["vision_ms"] / 1000.0 + robot_motion_s for r in records)
    return 60.0 * sum(r["q1"] == "yes" for r in records) / seconds
