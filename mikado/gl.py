"""Choose MuJoCo's OpenGL backend before mujoco is imported.

MUJOCO_GL set by the user wins (`egl` on a GPU machine). Unset: `osmesa` (software, Debian's
libosmesa6) when there is no display, so generation works on headless CPU servers and batch
nodes; with a display MuJoCo's own default (GLFW) is kept.
"""

from __future__ import annotations

import os


def select_backend() -> str:
    if (
        "MUJOCO_GL" not in os.environ
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ["MUJOCO_GL"] = "osmesa"
    backend = os.environ.get("MUJOCO_GL", "glfw")
    if backend == "osmesa":
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    elif backend == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    return backend
