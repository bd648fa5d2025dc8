"""Judging calibration views one at a time, so the technician hears at once what to retake.

A view is refused for a reason the technician can act on: no board, too few corners or corners
on a line, blur, or the same position as a view already taken. Accepted views feed a coverage
map of the image area, because intrinsics (distortion above all) are only as good as the image
area the corners covered.

Both limits are absolute or relative to the board *as seen*, never to the board's size: a fine
board larger than the field of view (macro lens) shows a small share of its corners in every
view and is as good for the intrinsics as a whole board, as long as each view has enough corners
spread over at least two rows and two columns; and blur is judged against the square's size in
pixels, because a lens that magnifies the board also magnifies its edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.wizard.boards import Board, Detection


@dataclass(frozen=True)
class ViewRules:
    """Thresholds for accepting a view (docs/calibration.md says how to set them)."""

    min_corners: int = 12  # corners seen (ChArUco: any share of the board), over >= 2 rows and columns
    min_line_spread: float = 0.25  # squares: RMS distance of the corners from their best-fit line
    max_edge_width_px: float = 4.0  # blur floor: a sharp edge spans ~1-2 px, Gaussian sigma s spans 2.5 s
    max_edge_width_fraction: float = 0.1  # blur limit relative to the square's side in pixels
    duplicate_shift: float = 0.02  # of the image diagonal, mean shift of shared corners

    def edge_limit_px(self, square_px: float) -> float:
        """The blur limit for a view whose squares measure `square_px`: the larger of the two rules."""
        return max(self.max_edge_width_px, self.max_edge_width_fraction * square_px)


@dataclass
class ViewVerdict:
    name: str
    accepted: bool
    reason: str  # why refused, or a one-line summary when accepted
    advice: str = ""
    detection: Detection | None = None
    edge_width_px: float | None = None


def square_size_px(board: Board, det: Detection) -> float:
    """Median side (px) of the board's squares in this view, from corners adjacent on the board."""
    cols, rows = det.ids % board.columns, det.ids // board.columns
    where = {int(i): k for k, i in enumerate(det.ids)}
    sides = []
    for k, (c, r) in enumerate(zip(cols, rows, strict=True)):
        for neighbour in (
            int(r * board.columns + c + 1) if c + 1 < board.columns else None,
            int((r + 1) * board.columns + c) if r + 1 < board.rows else None,
        ):
            if neighbour is not None and neighbour in where:
                sides.append(float(np.linalg.norm(det.image_points[where[neighbour]] - det.image_points[k])))
    if sides:
        return float(np.median(sides))
    return 0.0


def spread_problem(board: Board, det: Detection, min_line_spread: float) -> str | None:
    """Why these corners cannot constrain a pose (too few rows or columns, or on a line), or None."""
    cols, rows = det.ids % board.columns, det.ids // board.columns
    if len(np.unique(cols)) < 2 or len(np.unique(rows)) < 2:
        return (
            f"corners on {len(np.unique(rows))} row(s) and {len(np.unique(cols))} column(s), 2 of each needed"
        )
    grid = np.column_stack([cols, rows]).astype(np.float64)
    singular = np.linalg.svd(grid - grid.mean(axis=0), compute_uv=False)
    across = float(singular[-1] / np.sqrt(len(grid)))
    if across < min_line_spread:
        return f"corners almost on one line ({across:.2f} squares across it, {min_line_spread:g} needed)"
    return None


def edge_width_px(gray: np.ndarray, points: np.ndarray) -> float:
    """Median width (px) of the intensity step around the corners: contrast / steepest gradient.

    For a step blurred by a Gaussian of sigma s this is s * sqrt(2 pi), independent of the
    lighting's contrast, which makes one threshold work from dim to bright cells.
    """
    img = gray.astype(np.float32)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    magnitude = cv2.magnitude(gx, gy)
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) >= 2:
        d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
        np.fill_diagonal(d, np.inf)
        spacing = float(np.median(d.min(axis=1)))
    else:
        spacing = 20.0
    half = int(np.clip(0.4 * spacing, 3, 40))
    h, w = img.shape
    widths = []
    for x, y in pts:
        x0, x1 = int(max(x - half, 0)), int(min(x + half + 1, w))
        y0, y1 = int(max(y - half, 0)), int(min(y + half + 1, h))
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        patch = img[y0:y1, x0:x1]
        contrast = float(np.percentile(patch, 95) - np.percentile(patch, 5))
        steepest = float(np.percentile(magnitude[y0:y1, x0:x1], 99))
        if contrast > 10 and steepest > 0:
            widths.append(contrast / steepest)
    return float(np.median(widths)) if widths else float("inf")


@dataclass
class ViewCollector:
    """Accepts or refuses views one by one and keeps the coverage of the accepted ones."""

    board: Board
    # (width, height); None: the first *accepted* view's. A refused view must not set it: one
    # photo from another camera that sorts first would otherwise refuse every good view.
    image_size: tuple[int, int] | None = None
    rules: ViewRules = field(default_factory=ViewRules)
    grid: tuple[int, int] = (8, 6)  # coverage cells (columns, rows)
    accepted: list[ViewVerdict] = field(default_factory=list)
    boards_found: int = 0  # views in which the board was detected at all, accepted or not

    def consider(self, name: str, image: np.ndarray) -> ViewVerdict:
        """Accept or refuse one view; the reason is one the technician can act on."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        verdict = self._judge(name, gray)
        if verdict.detection is not None:
            self.boards_found += 1
        if verdict.accepted:
            if self.image_size is None:
                self.image_size = (gray.shape[1], gray.shape[0])
            self.accepted.append(verdict)
        return verdict

    def _judge(self, name: str, gray: np.ndarray) -> ViewVerdict:
        if self.image_size is not None and (gray.shape[1], gray.shape[0]) != tuple(self.image_size):
            return ViewVerdict(
                name,
                False,
                f"image is {gray.shape[1]}x{gray.shape[0]}, the others are "
                f"{self.image_size[0]}x{self.image_size[1]}",
                "use one camera at one resolution for the whole calibration",
            )
        det = self.board.detect(gray)
        if det is None:
            hint = (
                "the whole board must be in view for a chessboard"
                if self.board.kind == "chessboard"
                else "check the board file (dictionary, legacy_pattern) and the light"
            )
            return ViewVerdict(name, False, "no board found", f"{hint}; avoid glare and keep the board flat")
        if det.count < self.rules.min_corners:
            return ViewVerdict(
                name,
                False,
                f"partial board: {det.count} of {det.total} corners (< {self.rules.min_corners})",
                "bring more of the board into the frame",
                det,
            )
        spread = spread_problem(self.board, det, self.rules.min_line_spread)
        if spread is not None:
            return ViewVerdict(
                name,
                False,
                f"partial board: {spread}",
                "bring more rows and columns of the board into view",
                det,
            )
        width = edge_width_px(gray, det.image_points)
        limit = self.rules.edge_limit_px(square_size_px(self.board, det))
        if width > limit:
            return ViewVerdict(
                name,
                False,
                f"blurry: edges {width:.1f} px wide (> {limit:.1f} px)",
                "hold the board still, refocus, or add light to shorten the exposure",
                det,
                width,
            )
        duplicate = self._duplicate_of(det)
        if duplicate is not None:
            other, shift = duplicate
            return ViewVerdict(
                name,
                False,
                f"duplicate of {other} (corners moved {shift:.1f} px on average)",
                "move the board to another part of the image or tilt it differently",
                det,
                width,
            )
        return ViewVerdict(
            name, True, f"{det.count}/{det.total} corners, edges {width:.1f} px", "", det, width
        )

    def _duplicate_of(self, det: Detection) -> tuple[str, float] | None:
        if not self.accepted:  # nothing to repeat, and no image size yet
            return None
        diagonal = float(np.hypot(*self.image_size))
        # a symmetric chessboard may be numbered from either end: compare both numberings
        numberings = [det.ids] + ([det.total - 1 - det.ids] if self.board.symmetric else [])
        for prior in self.accepted:
            for ids in numberings:
                shared, a, b = np.intersect1d(ids, prior.detection.ids, return_indices=True)
                if len(shared) < 0.5 * min(det.count, prior.detection.count):
                    continue
                shift = float(
                    np.linalg.norm(det.image_points[a] - prior.detection.image_points[b], axis=1).mean()
                )
                if shift < self.rules.duplicate_shift * diagonal:
                    return prior.name, shift
        return None

    def coverage(self) -> np.ndarray:
        """(rows, columns) count of accepted corners per cell of the image."""
        cols, rows = self.grid
        counts = np.zeros((rows, cols), int)
        if self.image_size is None:  # no view accepted yet
            return counts
        w, h = self.image_size
        for verdict in self.accepted:
            pts = verdict.detection.image_points
            cx = np.clip((pts[:, 0] / w * cols).astype(int), 0, cols - 1)
            cy = np.clip((pts[:, 1] / h * rows).astype(int), 0, rows - 1)
            np.add.at(counts, (cy, cx), 1)
        return counts

    def coverage_fraction(self) -> float:
        return float((self.coverage() > 0).mean())

    def coverage_text(self) -> str:
        """Terminal map: '#' covered cell, '.' empty cell, framed like the image."""
        counts = self.coverage()
        lines = ["+" + "-" * counts.shape[1] + "+"]
        lines += ["|" + "".join("#" if c else "." for c in row) + "|" for row in counts]
        lines.append("+" + "-" * counts.shape[1] + "+")
        return "\n".join(lines)

    def coverage_image(self, background: np.ndarray | None = None) -> np.ndarray:
        """BGR picture of the covered cells (green) and every accepted corner (one colour per view)."""
        w, h = self.image_size
        if background is None:
            canvas = np.full((h, w, 3), 40, np.uint8)
        else:
            canvas = background if background.ndim == 3 else cv2.cvtColor(background, cv2.COLOR_GRAY2BGR)
            canvas = (canvas.astype(np.float32) * 0.5).astype(np.uint8)
        counts = self.coverage()
        rows, cols = counts.shape
        overlay = canvas.copy()
        for r in range(rows):
            for c in range(cols):
                p0 = (int(c * w / cols), int(r * h / rows))
                p1 = (int((c + 1) * w / cols) - 1, int((r + 1) * h / rows) - 1)
                if counts[r, c]:
                    cv2.rectangle(overlay, p0, p1, (0, 140, 0), -1)
                cv2.rectangle(overlay, p0, p1, (90, 90, 90), 1)
        canvas = cv2.addWeighted(overlay, 0.45, canvas, 0.55, 0)
        for i, verdict in enumerate(self.accepted):
            colour = tuple(
                int(x) for x in cv2.applyColorMap(np.uint8([[37 * i % 256]]), cv2.COLORMAP_HSV)[0, 0]
            )
            for x, y in verdict.detection.image_points:
                cv2.circle(canvas, (int(round(x)), int(round(y))), 2, colour, -1)
        return canvas
