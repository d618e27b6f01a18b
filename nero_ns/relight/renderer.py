"""Mitsuba 3 relighting: a principled-BSDF mesh under a lat-long environment, seen through pinhole cameras.

A scene is described once as a plain dict (numpy 4x4 matrices for transforms, file paths for the mesh and the
environment); the same dict is loaded into Mitsuba and written as scene XML, so the XML renders what we render.
Sensors match the generator's (`nero_ns.synthetic.render.render_view`: box filter, independent sampler), so with
the same variant, seed and spp the generator's ground-truth renders are reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence
from xml.sax.saxutils import quoteattr

import mitsuba as mi
import numpy as np
from jaxtyping import Float, UInt8
from nerfstudio.utils.rich_utils import CONSOLE
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nero_ns.colors import linear_to_srgb

from nero_ns.errors import NeroInputError
from nero_ns.relight.assets import MaterialAssets
from nero_ns.relight.cameras import RelightCamera
from nero_ns.relight.environment import environment_to_world
from nero_ns.synthetic.cameras import OPENGL_TO_MITSUBA_CAMERA
from nero_ns.synthetic.render import (
    ALBEDO_ATTRIBUTE,
    PATH_MAX_DEPTH,
    bsdf_parameter,
    principled_bsdf,
    select_variant,
    variant_works,
)

SceneDict = Dict[str, Any]
PROGRESS_COLUMNS = (
    TextColumn("[bold blue]{task.description:<16}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
    TimeRemainingColumn(),
)


def select_relight_variant(requested: str) -> str:
    """`auto`: cuda_ad_rgb when a GPU renders, else the generator's choice (llvm_ad_rgb, else scalar_rgb)."""
    if requested == "auto":
        return "cuda_ad_rgb" if variant_works("cuda_ad_rgb") else select_variant("auto")
    if not variant_works(requested):
        raise NeroInputError(f"Mitsuba variant {requested} does not render on this machine; pass --variant auto")
    return requested


@dataclass(frozen=True)
class Lighting:
    """The environment: a linear lat-long file in our convention, its rotation about +z and its strength."""

    envmap_path: Path
    rotation_deg: float = 0.0
    strength: float = 1.0


def scene_description(
    assets: MaterialAssets, mesh_path: Path, lighting: Lighting, transparent: bool, vertex_colors: bool = False
) -> SceneDict:
    """The relighting scene: `mesh_path` (written by `write_attribute_ply` for `assets`) with a principled BSDF
    (constants or `mesh_attribute` textures), lit by the environment, which is hidden when `transparent` (then
    the film's alpha is the object's coverage). `vertex_colors` shows the per-vertex albedo as a diffuse color."""
    if vertex_colors:
        bsdf = {"type": "diffuse", "reflectance": bsdf_parameter(assets.per_vertex, ALBEDO_ATTRIBUTE, assets.albedo)}
    else:
        bsdf = principled_bsdf(assets.per_vertex, assets.albedo, assets.metallic, assets.roughness)
    return {
        "type": "scene",
        "integrator": {"type": "path", "max_depth": PATH_MAX_DEPTH, "hide_emitters": bool(transparent)},
        "environment": {
            "type": "envmap",
            "filename": str(lighting.envmap_path),
            "to_world": environment_to_world(lighting.rotation_deg),
            "scale": float(lighting.strength),
        },
        "object": {"type": "ply", "filename": str(mesh_path), "bsdf": bsdf},
    }


def sensor_description(camera: RelightCamera, spp: int, transparent: bool) -> SceneDict:
    """A perspective sensor through a nerfstudio (OpenGL) camera. Mitsuba's principal point offsets are film
    fractions that move the image content the other way: a principal point right of center is a negative x."""
    return {
        "type": "perspective",
        "fov": camera.fov_x_deg,
        "fov_axis": "x",
        "principal_point_offset_x": (0.5 * camera.width - camera.cx) / camera.width,
        "principal_point_offset_y": (0.5 * camera.height - camera.cy) / camera.height,
        "to_world": camera.c2w @ OPENGL_TO_MITSUBA_CAMERA,
        "film": {
            "type": "hdrfilm",
            "width": camera.width,
            "height": camera.height,
            "rfilter": {"type": "box"},
            "pixel_format": "rgba" if transparent else "rgb",
        },
        "sampler": {"type": "independent", "sample_count": spp},
    }


def to_mitsuba(description: SceneDict) -> SceneDict:
    """The description with numpy matrices turned into Mitsuba transforms, ready for `mi.load_dict`."""
    converted = {}
    for key, value in description.items():
        if isinstance(value, dict):
            converted[key] = to_mitsuba(value)
        elif isinstance(value, np.ndarray):
            converted[key] = mi.ScalarTransform4f(np.asarray(value, dtype=np.float64).tolist())
        else:
            converted[key] = value
    return converted


def render_image(
    scene: "mi.Scene", camera: RelightCamera, spp: int, seed: int, transparent: bool
) -> Float[np.ndarray, "height width channels"]:
    """Linear RGB (RGBA with premultiplied color and coverage alpha when `transparent`) of one view."""
    sensor = mi.load_dict(to_mitsuba(sensor_description(camera, spp, transparent)))
    return np.array(mi.render(scene, sensor=sensor, seed=seed, spp=spp), dtype=np.float32)


def render_views(
    description: SceneDict, cameras: List[RelightCamera], spp: int, seeds: Sequence[int], transparent: bool,
    label: str = "Relighting",
) -> List[Float[np.ndarray, "height width channels"]]:
    """Render every camera (a variant must be set) under one progress bar; view i uses seed `seeds[i]`."""
    scene = mi.load_dict(to_mitsuba(description))
    images = []
    with Progress(*PROGRESS_COLUMNS, console=CONSOLE) as progress:
        task = progress.add_task(label, total=len(cameras))
        for camera, seed in zip(cameras, seeds):
            images.append(render_image(scene, camera, spp, int(seed) % 2**32, transparent))
            progress.advance(task)
    return images


def to_uint8_srgb(image: Float[np.ndarray, "height width channels"]) -> UInt8[np.ndarray, "height width channels"]:
    """8-bit sRGB of a linear render; RGBA (premultiplied) becomes straight alpha, as PNG viewers expect."""
    color = image[..., :3]
    if image.shape[-1] == 4:
        alpha = np.clip(image[..., 3:4], 0.0, 1.0)
        color = np.where(alpha > 0.0, color / np.maximum(alpha, 1e-8), 0.0)
        color = np.concatenate([linear_to_srgb(color), alpha], axis=-1)
    else:
        color = linear_to_srgb(color)
    return np.round(np.clip(color, 0.0, 1.0) * 255.0).astype(np.uint8)


# Mitsuba's XML tag of each plugin type used in our descriptions (the tag names the plugin's kind).
_PLUGIN_TAGS = {
    "scene": "scene", "path": "integrator", "envmap": "emitter", "ply": "shape", "principled": "bsdf",
    "diffuse": "bsdf", "mesh_attribute": "texture", "perspective": "sensor", "hdrfilm": "film", "box": "rfilter",
    "independent": "sampler",
}


def _xml_value(name: str, value: Any, folder: Path, indent: str) -> list[str]:
    if isinstance(value, dict) and value.get("type") == "rgb":
        return [f'{indent}<rgb name="{name}" value="{" ".join(f"{c:.9g}" for c in value["value"])}"/>']
    if isinstance(value, dict):
        return _xml_plugin(value, folder, indent, name)
    if isinstance(value, np.ndarray):
        matrix = " ".join(f"{v:.12g}" for v in np.asarray(value, dtype=np.float64).ravel())
        opening, row = f'{indent}<transform name="{name}">', f'{indent}    <matrix value="{matrix}"/>'
        return [opening, row, f"{indent}</transform>"]
    if isinstance(value, bool):
        return [f'{indent}<boolean name="{name}" value="{str(value).lower()}"/>']
    if isinstance(value, int):
        return [f'{indent}<integer name="{name}" value="{value}"/>']
    if isinstance(value, float):
        return [f'{indent}<float name="{name}" value="{value:.9g}"/>']
    if name == "filename":
        path = Path(value)
        value = str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
    return [f"{indent}<string name={quoteattr(name)} value={quoteattr(str(value))}/>"]


def _xml_plugin(description: SceneDict, folder: Path, indent: str, name: Optional[str] = None) -> list[str]:
    plugin_type = description["type"]
    tag = _PLUGIN_TAGS[plugin_type]
    attributes = ' version="3.0.0"' if tag == "scene" else f' type="{plugin_type}"'
    if tag == "texture":
        attributes += f' name="{name}"'  # a texture is a named parameter of its parent
    elif tag in ("integrator", "emitter", "shape", "sensor"):
        attributes += f' id="{name}"'
    lines = [f"{indent}<{tag}{attributes}>"]
    for key, value in description.items():
        if key != "type":
            lines += _xml_value(key, value, folder, indent + "    ")
    return lines + [f"{indent}</{tag}>"]


def write_scene_xml(path: Path, description: SceneDict, sensor: Optional[SceneDict] = None) -> None:
    """Mitsuba 3 scene XML of `description` (plus `sensor`); files inside the XML's folder are named relative to
    it, which `mitsuba scene.xml` and `mi.load_file` resolve."""
    scene = dict(description)
    if sensor is not None:
        scene["sensor"] = sensor
    path.write_text("\n".join(_xml_plugin(scene, path.parent, "")) + "\n")
