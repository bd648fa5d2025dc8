"""The two dataset presets of the thesis (Table 5.1), as sampling ranges.

`mikado`: one family (stick sachets), a small texture set (120 prints, 40 backgrounds), fixed
luminance. `mikado+`: every family, 2,400 prints and 600 backgrounds (the thesis's counts,
procedurally generated here), randomised luminance, more instances. A user's image folders are
added to the procedural pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mikado.families import FAMILIES


@dataclass(frozen=True)
class Preset:
    name: str
    families: tuple[str, ...]
    n_textures: int
    n_backgrounds: int
    instances: tuple[int, int]  # inclusive range of dropped instances
    heterogeneous: float  # probability that a scene mixes textures (and families)
    luminance: bool  # randomise print gain/gamma
    deformation: float  # strength of bends, twists, tapers and surface noise
    fill: tuple[float, float]  # pile footprint / bin floor area
    texture_dirs: tuple[str, ...] = field(default=())
    background_dirs: tuple[str, ...] = field(default=())


PRESETS: dict[str, Preset] = {
    "mikado": Preset(
        name="mikado",
        families=("stick_sachet",),
        n_textures=120,
        n_backgrounds=40,
        instances=(13, 30),
        heterogeneous=0.0,
        luminance=False,
        deformation=1.0,
        fill=(2.0, 3.0),
    ),
    "mikado+": Preset(
        name="mikado+",
        families=tuple(FAMILIES),
        n_textures=2400,
        n_backgrounds=600,
        instances=(22, 48),
        heterogeneous=0.2,
        luminance=True,
        deformation=1.0,
        fill=(2.0, 3.2),
    ),
}


def get_preset(name: str, **overrides) -> Preset:
    """A preset by name, with fields overridden (e.g. instances=(5, 5), families=("rigid_box",))."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    preset = PRESETS[name]
    unknown = set(overrides) - set(preset.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown preset override(s) {sorted(unknown)}; "
            f"expected some of {sorted(preset.__dataclass_fields__)}"
        )
    if "families" in overrides:
        # An empty list (`--families ,`) passed here and failed in every worker as numpy's
        # "high <= 0", after dataset.json had recorded it.
        if not overrides["families"]:
            raise ValueError(f"families: none given; expected one or more of {sorted(FAMILIES)}")
        bad = [f for f in overrides["families"] if f not in FAMILIES]
        if bad:
            raise ValueError(f"unknown family {bad}; expected some of {sorted(FAMILIES)}")
        overrides["families"] = tuple(overrides["families"])
    if "instances" in overrides:
        lo, hi = overrides["instances"]
        if not 1 <= lo <= hi:
            raise ValueError(f"instances range {overrides['instances']} must satisfy 1 <= min <= max")
        overrides["instances"] = (int(lo), int(hi))
    return replace(preset, **overrides)
