"""Offscreen RGB, depth and segmentation of a compiled scene with MuJoCo's own renderer.

`mujoco.Renderer` creates a GL context per model; a pile is a new model every scene, and
creating an OSMesa/EGL context costs more than the render itself. `OffscreenRenderer` keeps one
GL context per process and only rebuilds the (cheap) MjrContext per model. RGB and depth come
from one pass, segmentation (geom ids) from a second.
"""

from __future__ import annotations

import atexit

import mujoco
import numpy as np

from mikado.gl import select_backend

COLLISION_GROUP = 3  # collision pieces live here and are never drawn


class OffscreenRenderer:
    """One GL context for the process; render any model up to (max_width, max_height)."""

    def __init__(self, max_width: int, max_height: int):
        self.max_width, self.max_height = max_width, max_height
        self._gl = _gl_context_class()(max_width, max_height)
        self._gl.make_current()
        # Free the context before interpreter teardown; PyOpenGL cannot do it during teardown.
        atexit.register(self.close)

    def render(
        self, model: mujoco.MjModel, data: mujoco.MjData, camera_id: int, width: int, height: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb HxWx3 uint8, depth HxW float32 metres along the optical axis,
        geom id HxW int32 with -1 where no geom is seen)."""
        if width > self.max_width or height > self.max_height:
            raise ValueError(
                f"render size {width}x{height} exceeds the context's {self.max_width}x{self.max_height}"
            )
        if self._gl is None:
            raise RuntimeError("render called after close")
        self._gl.make_current()
        ctx = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50.value)
        try:
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, ctx)
            ctx.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
            scene = mujoco.MjvScene(model, maxgeom=max(1000, 2 * model.ngeom + 10))
            opt = mujoco.MjvOption()
            opt.geomgroup[:] = 1
            opt.geomgroup[COLLISION_GROUP] = 0
            cam = mujoco.MjvCamera()
            cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
            cam.fixedcamid = camera_id
            mujoco.mjv_updateScene(model, data, opt, None, cam, mujoco.mjtCatBit.mjCAT_ALL.value, scene)
            rect = mujoco.MjrRect(0, 0, width, height)
            rgb = np.empty((height, width, 3), np.uint8)
            zbuf = np.empty((height, width), np.float32)
            mujoco.mjr_render(rect, scene, ctx)
            mujoco.mjr_readPixels(rgb, zbuf, rect, ctx)
            scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = True
            scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = True
            seg_rgb = np.empty((height, width, 3), np.uint8)
            mujoco.mjr_render(rect, scene, ctx)
            mujoco.mjr_readPixels(seg_rgb, None, rect, ctx)
        finally:
            ctx.free()
        depth = _linear_depth(model, zbuf)
        segid = (
            seg_rgb[..., 0].astype(np.int32)
            | (seg_rgb[..., 1].astype(np.int32) << 8)
            | (seg_rgb[..., 2].astype(np.int32) << 16)
        )
        lut = np.full(scene.ngeom + 2, -1, np.int32)
        for i in range(scene.ngeom):
            g = scene.geoms[i]
            if g.segid != -1 and g.objtype == mujoco.mjtObj.mjOBJ_GEOM:
                lut[g.segid + 1] = g.objid
        geom_ids = lut[np.clip(segid, 0, lut.size - 1)]
        return np.flipud(rgb).copy(), np.flipud(depth).copy(), np.flipud(geom_ids).copy()

    def close(self) -> None:
        if self._gl is not None:
            self._gl.free()
            self._gl = None


def _gl_context_class() -> type:
    """The GL context class of our backend choice, imported directly: mujoco picks its own at
    import time, which is wrong when mujoco was imported before mikado chose (e.g. GLFW on a
    headless machine)."""
    backend = select_backend()
    try:
        if backend == "osmesa":
            from mujoco.osmesa import GLContext
        elif backend == "egl":
            from mujoco.egl import GLContext
        else:
            from mujoco.glfw import GLContext
    except ImportError as exc:
        raise RuntimeError(
            f"cannot load MuJoCo's {backend!r} OpenGL backend ({exc}); on a CPU install libosmesa6 and use "
            "MUJOCO_GL=osmesa, on a GPU use MUJOCO_GL=egl"
        ) from exc
    return GLContext


def _linear_depth(model: mujoco.MjModel, zbuf: np.ndarray) -> np.ndarray:
    """OpenGL depth buffer (zero-far mapping) to metres, as mujoco.Renderer computes it."""
    extent = model.stat.extent
    near = np.float32(model.vis.map.znear * extent)
    far = np.float32(model.vis.map.zfar * extent)
    c = np.float32(-0.5) * (-(far + near) / (far - near)) - np.float32(0.5)
    d = np.float32(-0.5) * (-(np.float32(2) * far * near) / (far - near))
    return (d / (zbuf.astype(np.float64) + c)).astype(np.float32)
