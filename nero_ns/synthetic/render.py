"""Mitsuba 3 scene descriptions and rendering for generated scenes (CPU variants only)."""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

import mitsuba as mi
import numpy as np
from jaxtyping import Float

from nero_ns.errors import NeroInputError
from nero_ns.synthetic.cameras import OPENGL_TO_MITSUBA_CAMERA, PinholeIntrinsics
from nero_ns.io.latlong import ENVMAP_TO_WORLD

MASK_SPP = 16
"""Samples per pixel of the coverage renders that masks are thresholded from."""
PATH_MAX_DEPTH = 8
"""Bounces of the path tracer: enough for the object to reflect itself in its concavities."""
ALBEDO_ATTRIBUTE, ROUGHNESS_ATTRIBUTE, METALLIC_ATTRIBUTE = "vertex_albedo_color", "vertex_roughness", "vertex_metallic"
"""Mitsuba mesh attribute names of the PLY properties albedo_r/g/b, roughness_x, metallic_x (its loader's naming;
`nero_ns.relight.assets.write_attribute_ply` writes such PLYs)."""


@dataclass(frozen=True)
class DiffuseMesh:
    """A diffuse distractor mesh on disk (Mitsuba loads meshes from PLY files)."""

    path: Path
    color: tuple[float, float, float]


@dataclass(frozen=True)
class Floor:
    """A square diffuse floor at height `height`, centered under the object, with a linear albedo texture."""

    center_xy: tuple[float, float]
    height: float
    half_size: float
    texture: np.ndarray
    """[H, W, 3] linear albedo over the whole floor (row 0 at +y, column 0 at -x)."""


@dataclass(frozen=True)
class SceneLayout:
    """Everything in a generated scene apart from the light and the cameras."""

    object_mesh: Path
    base_color: tuple[float, float, float]
    metallic: float
    roughness: float
    floor: Optional[Floor] = None
    distractors: List[DiffuseMesh] = field(default_factory=list)
    vertex_materials: bool = False
    """The object PLY carries per-vertex albedo, roughness and metallic, which replace the constants above."""


def _transform(matrix: np.ndarray) -> "mi.ScalarTransform4f":
    return mi.ScalarTransform4f(np.asarray(matrix, dtype=np.float64).tolist())


def _scale_translate(scale: tuple[float, float, float], translation: tuple[float, float, float]) -> np.ndarray:
    matrix = np.diag([*scale, 1.0])
    matrix[:3, 3] = translation
    return matrix


def _rgb(color) -> dict:
    return {"type": "rgb", "value": [float(c) for c in color]}


def bsdf_parameter(per_vertex: bool, attribute: str, constant: Any) -> Any:
    """A principled-BSDF parameter: the mesh attribute `attribute` when per vertex, else the constant."""
    if per_vertex:
        return {"type": "mesh_attribute", "name": attribute}
    return _rgb(constant) if attribute == ALBEDO_ATTRIBUTE else float(constant)


def principled_bsdf(per_vertex: bool, base_color: Any, metallic: Any, roughness: Any) -> dict:
    """Mitsuba's principled BSDF with constant parameters or per-vertex ones (mesh attributes)."""
    return {
        "type": "principled",
        "base_color": bsdf_parameter(per_vertex, ALBEDO_ATTRIBUTE, base_color),
        "metallic": bsdf_parameter(per_vertex, METALLIC_ATTRIBUTE, metallic),
        "roughness": bsdf_parameter(per_vertex, ROUGHNESS_ATTRIBUTE, roughness),
    }


def _black() -> dict:
    return {"type": "diffuse", "reflectance": _rgb((0.0, 0.0, 0.0))}


def _surroundings(layout: SceneLayout, as_occluders: bool) -> dict:
    """Floor and distractors, with their own colors or as black occluders (for masks)."""
    shapes = {}
    if layout.floor is not None:
        floor = layout.floor
        to_world = _scale_translate((floor.half_size, floor.half_size, 1.0), (*floor.center_xy, floor.height))
        texture = {"type": "bitmap", "bitmap": mi.Bitmap(floor.texture.astype(np.float32)), "raw": True}
        bsdf = _black() if as_occluders else {"type": "diffuse", "reflectance": texture}
        shapes["floor"] = {"type": "rectangle", "to_world": _transform(to_world), "bsdf": bsdf}
    for index, distractor in enumerate(layout.distractors):
        bsdf = _black() if as_occluders else {"type": "diffuse", "reflectance": _rgb(distractor.color)}
        shapes[f"distractor_{index}"] = {"type": "ply", "filename": str(distractor.path), "bsdf": bsdf}
    return shapes


def shaded_scene(layout: SceneLayout, envmap_path: Path, with_surroundings: bool) -> "mi.Scene":
    """The object with its principled BSDF, lit by (and seen against) the environment map."""
    description = {
        "type": "scene",
        "integrator": {"type": "path", "max_depth": PATH_MAX_DEPTH},
        "environment": {"type": "envmap", "filename": str(envmap_path), "to_world": _transform(ENVMAP_TO_WORLD)},
        "object": {
            "type": "ply",
            "filename": str(layout.object_mesh),
            "bsdf": principled_bsdf(layout.vertex_materials, layout.base_color, layout.metallic, layout.roughness),
        },
    }
    if with_surroundings:
        description.update(_surroundings(layout, as_occluders=False))
    return mi.load_dict(description)


def coverage_scene(layout: SceneLayout, with_surroundings: bool) -> "mi.Scene":
    """The object as a unit emitter in the dark, the rest black: renders to the object's visible pixel coverage."""
    description = {
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 1},
        "object": {
            "type": "ply",
            "filename": str(layout.object_mesh),
            "bsdf": _black(),
            "emitter": {"type": "area", "radiance": _rgb((1.0, 1.0, 1.0))},
        },
    }
    if with_surroundings:
        description.update(_surroundings(layout, as_occluders=True))
    return mi.load_dict(description)


def render_view(
    scene: "mi.Scene", c2w: Float[np.ndarray, "4 4"], intrinsics: PinholeIntrinsics, spp: int, seed: int
) -> Float[np.ndarray, "height width 3"]:
    """Linear RGB render through a nerfstudio (OpenGL) camera-to-world pose; box filter, so a pixel is the mean
    radiance over its footprint, as a NeRF ray through the pixel center estimates it."""
    sensor = mi.load_dict(
        {
            "type": "perspective",
            "fov": float(intrinsics.fov_x_deg),
            "fov_axis": "x",
            "to_world": _transform(c2w @ OPENGL_TO_MITSUBA_CAMERA),
            "film": {
                "type": "hdrfilm",
                "width": intrinsics.width,
                "height": intrinsics.height,
                "rfilter": {"type": "box"},
                "pixel_format": "rgb",
            },
            "sampler": {"type": "independent", "sample_count": spp},
        }
    )
    return np.array(mi.render(scene, sensor=sensor, seed=seed, spp=spp), dtype=np.float32)[..., :3]


# A miniature of every plugin the generator uses, run in a child process; only mitsuba is imported, to be quick.
_PROBE_SCRIPT = """
import sys
import mitsuba as mi
import numpy as np
mi.set_variant(sys.argv[1])
T = mi.ScalarTransform4f()
scene = mi.load_dict({
    "type": "scene",
    "integrator": {"type": "path", "max_depth": 3},
    "environment": {"type": "envmap", "bitmap": mi.Bitmap(np.ones((8, 16, 3), dtype=np.float32))},
    "object": {"type": "sphere", "bsdf": {"type": "principled", "metallic": 1.0, "roughness": 0.2}},
    "lamp": {"type": "cube", "to_world": T.translate([3, 0, 0]).scale(0.2), "emitter": {"type": "area"}},
    "floor": {"type": "rectangle", "to_world": T.translate([0, 0, -1]).scale(4),
              "bsdf": {"type": "diffuse", "reflectance": {"type": "checkerboard"}}},
    "sensor": {"type": "perspective", "to_world": T.look_at(origin=[4, 1, 2], target=[0, 0, 0], up=[0, 0, 1]),
               "film": {"type": "hdrfilm", "width": 8, "height": 8, "rfilter": {"type": "box"}}},
})
assert np.isfinite(np.array(mi.render(scene, spp=4))).all()
"""


@functools.lru_cache(maxsize=None)
def variant_works(variant: str) -> bool:
    """Whether `variant` renders here, tried in a child process: an unusable libLLVM aborts rather than raises."""
    if variant not in mi.variants():
        return False
    try:
        command = [sys.executable, "-c", _PROBE_SCRIPT, variant]
        result = subprocess.run(command, capture_output=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def select_variant(requested: str) -> str:
    """The Mitsuba variant to render with: llvm_ad_rgb when it works (about 5x faster), else scalar_rgb."""
    if requested == "auto":
        return "llvm_ad_rgb" if variant_works("llvm_ad_rgb") else "scalar_rgb"
    if not variant_works(requested):
        raise NeroInputError(
            f"nero-synth: Mitsuba variant {requested} does not render on this machine (llvm_ad_rgb needs a libLLVM "
            "newer than 15, e.g. `apt-get install libllvm19`); pass --variant scalar_rgb or --variant auto"
        )
    return requested
