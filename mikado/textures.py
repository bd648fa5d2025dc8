"""Procedural packaging-like textures and bin backgrounds, plus user folders of images.

The thesis drew 120-2,400 product prints and 40-600 backgrounds from image search; we cannot
ship those, so prints are composed from the elements packaging is made of (colour regions,
stripes, gradients, glyphs and text, logos, noise, film highlights) and users may add folders of
their own PNG/JPEG images (e.g. scans of their real products). A texture is fully determined by
its integer id and the preset's variety, so a dataset's textures can be split into folds.
"""

from __future__ import annotations

import string
from pathlib import Path

import cv2
import numpy as np

TEXTURE_SIZE = (256, 256)  # (width, height) of product prints
BACKGROUND_SIZE = (256, 256)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_FONTS = [
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
]


def _colour(rng: np.random.Generator, saturated: bool = True) -> tuple[int, int, int]:
    hsv = np.uint8(
        [[[rng.integers(0, 180), rng.integers(120 if saturated else 0, 256), rng.integers(60, 256)]]]
    )
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _gradient(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    c0 = np.array(_colour(rng), np.float32)
    c1 = np.array(_colour(rng), np.float32)
    ang = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.cos(ang) * xx / w + np.sin(ang) * yy / h
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    return (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.uint8)


def packaging_texture(texture_id: int, size: tuple[int, int] = TEXTURE_SIZE) -> np.ndarray:
    """HxWx3 uint8 RGB print for texture number `texture_id` (deterministic)."""
    rng = np.random.default_rng([0x7E57, int(texture_id)])
    w, h = size
    img = _gradient(rng, w, h) if rng.random() < 0.5 else np.full((h, w, 3), _colour(rng), np.uint8)
    for _ in range(int(rng.integers(0, 4))):  # colour regions
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = int(rng.integers(x0, w + 1)), int(rng.integers(y0, h + 1))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x0, y0), (x1, y1), _colour(rng), -1)
        else:
            cv2.ellipse(
                img,
                ((x0 + x1) // 2, (y0 + y1) // 2),
                (max(2, (x1 - x0) // 2), max(2, (y1 - y0) // 2)),
                float(rng.uniform(0, 180)),
                0,
                360,
                _colour(rng),
                -1,
                cv2.LINE_AA,
            )
    if rng.random() < 0.6:  # stripes
        period = int(rng.integers(8, 64))
        thick = int(rng.integers(2, max(3, period // 2)))
        col = _colour(rng)
        vertical = rng.random() < 0.5
        for p in range(0, w if vertical else h, period):
            if vertical:
                cv2.rectangle(img, (p, 0), (p + thick, h), col, -1)
            else:
                cv2.rectangle(img, (0, p), (w, p + thick), col, -1)
    for _ in range(int(rng.integers(1, 4))):  # logos
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        r = int(rng.integers(10, 50))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.circle(img, c, r, _colour(rng), -1, cv2.LINE_AA)
            cv2.circle(img, c, max(1, r * 2 // 3), _colour(rng), -1, cv2.LINE_AA)
        elif kind == 1:
            n = int(rng.integers(3, 8))
            a = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, np.pi)
            pts = np.stack([c[0] + r * np.cos(a), c[1] + r * np.sin(a)], -1).astype(np.int32)
            cv2.fillPoly(img, [pts], _colour(rng), cv2.LINE_AA)
        else:
            cv2.ellipse(
                img, c, (r, max(3, r // 2)), float(rng.uniform(0, 180)), 0, 360, _colour(rng), 3, cv2.LINE_AA
            )
    for _ in range(int(rng.integers(1, 6))):  # text and glyphs
        n = int(rng.integers(2, 12))
        text = "".join(rng.choice(list(string.ascii_uppercase + string.digits + "  %&"), n))
        font = _FONTS[int(rng.integers(0, len(_FONTS)))]
        scale = float(rng.uniform(0.4, 1.8))
        org = (int(rng.integers(-20, w - 10)), int(rng.integers(15, h)))
        cv2.putText(
            img,
            text,
            org,
            font,
            scale,
            _colour(rng, saturated=rng.random() < 0.5),
            int(rng.integers(1, 4)),
            cv2.LINE_AA,
        )
    if rng.random() < 0.5:  # print noise / paper grain
        img = np.clip(img.astype(np.int16) + rng.normal(0, rng.uniform(2, 12), img.shape), 0, 255).astype(
            np.uint8
        )
    if rng.random() < 0.5:  # transparent-film highlights: soft bright bands
        over = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(1, 4))):
            x = int(rng.integers(0, w))
            cv2.line(over, (x, 0), (x + int(rng.integers(-w // 2, w // 2)), h), 1.0, int(rng.integers(3, 20)))
        over = cv2.GaussianBlur(over, (0, 0), float(rng.uniform(2, 8))) * float(rng.uniform(0.3, 0.8))
        img = (img * (1 - over[..., None]) + 255 * over[..., None]).astype(np.uint8)
    return img


def background_texture(background_id: int, size: tuple[int, int] = BACKGROUND_SIZE) -> np.ndarray:
    """HxWx3 uint8 RGB bin/floor surface: plastic, metal, wood, cardboard or cloth-like."""
    rng = np.random.default_rng([0xBA6, int(background_id)])
    w, h = size
    base = np.array(_colour(rng, saturated=rng.random() < 0.4), np.float32)
    kind = int(rng.integers(0, 4))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # smooth plastic with blotchy noise
        n = cv2.resize(rng.normal(0, 1, (8, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        img = base + 18 * n[..., None]
    elif kind == 1:  # wood-like grain
        f = rng.uniform(0.05, 0.2)
        g = np.sin(f * (xx + 8 * np.sin(yy * rng.uniform(0.01, 0.05)))) * 0.5 + 0.5
        img = base * (0.7 + 0.3 * g[..., None])
    elif kind == 2:  # brushed metal
        streak = cv2.blur(rng.normal(0, 1, (h, w)).astype(np.float32), (int(rng.integers(15, 60)), 1))
        img = base * 0.3 + 140 + 40 * streak[..., None]
    else:  # woven / perforated grid
        p = int(rng.integers(6, 24))
        g = ((xx % p < p / 2) ^ (yy % p < p / 2)).astype(np.float32)
        img = base * (0.8 + 0.2 * g[..., None])
    img = img + rng.normal(0, rng.uniform(1, 8), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def list_images(folder: str | Path | None, label: str | None = None) -> list[Path]:
    """Sorted image files of a user folder (sorted so a seed picks the same file everywhere);
    `label` starts the error messages (default "texture folder FOLDER")."""
    if folder is None:
        return []
    path = Path(folder)
    label = label or f"texture folder {path}"
    if not path.is_dir():
        raise FileNotFoundError(f"{label}: does not exist or is not a folder")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{label}: holds no .png/.jpg/.jpeg images")
    return files


def _unreadable(path: Path) -> bool:
    # Decoded whole (a valid header with a truncated body fails too); at 1/8 size where the
    # decoder can (JPEG), so a folder of camera photos is checked in seconds.
    return cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8) is None


def check_images(files: list[Path], flag: str, threads: int = 1) -> None:
    """Decode every file before a run starts: one that is not an image would otherwise stop a
    generation hours in, when a scene first draws it. ValueError naming `flag` and the file."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, threads)) as pool:  # OpenCV decodes without the GIL
        bad = [f for f, fails in zip(files, pool.map(_unreadable, files), strict=True) if fails]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValueError(f"{flag}: cannot read image {bad[0]}{more}; expected PNG or JPEG files")


def load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 image resized to `size` (width, height); clear error on unreadable files."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path} (expected a PNG or JPEG file)")
    return cv2.cvtColor(cv2.resize(img, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def adjust_luminance(img: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    """Randomised luminance (mikado+): a gain and a gamma on the print."""
    x = np.clip((img.astype(np.float32) / 255.0) ** gamma * gain, 0, 1)
    return (x * 255 + 0.5).astype(np.uint8)
