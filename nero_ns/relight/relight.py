"""Relight a mesh with PBR materials into a folder: renders, their cameras, the Mitsuba scene, a Blender bundle.

    DIR/images/<name>.png          sRGB renders (RGBA with alpha = coverage when transparent)
    DIR/transforms.json            the cameras rendered (nerfstudio format, names match images/)
    DIR/scene/scene.xml            Mitsuba 3 scene (first camera as its sensor) with mesh.ply, environment.exr
    DIR/blender/                   model.glb, environment.exr (Blender's World convention), README.txt
    DIR/orbit.mp4                  with --orbit, when ffmpeg is available
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import imageio.v3 as iio
import mitsuba as mi
import numpy as np
import trimesh
from jaxtyping import Float
from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.io.hdr import write_exr
from nero_ns.io.latlong import load_environment
from nero_ns.io.meshes import write_gltf
from nero_ns.relight.assets import MaterialAssets, write_attribute_ply
from nero_ns.relight.cameras import RelightCamera, write_transforms
from nero_ns.relight.environment import to_blender_latlong
from nero_ns.relight.renderer import (
    Lighting,
    render_views,
    scene_description,
    select_relight_variant,
    sensor_description,
    to_uint8_srgb,
    write_scene_xml,
)

VIDEO_FPS = 24


@dataclass
class RelightResult:
    """What `relight` wrote, and the linear renders themselves."""

    images: List[Float[np.ndarray, "height width channels"]]
    image_paths: List[Path]
    scene_xml: Path
    blender_dir: Path
    video: Optional[Path]


def relight(
    assets: MaterialAssets,
    envmap: Path,
    cameras: List[RelightCamera],
    output_dir: Path,
    spp: int = 64,
    seeds: Optional[Sequence[int]] = None,
    rotation_deg: float = 0.0,
    strength: float = 1.0,
    transparent: bool = False,
    variant: str = "auto",
    video: bool = False,
) -> RelightResult:
    """Render `assets` under `envmap` from `cameras` into `output_dir` (layout in the module docstring).
    View i uses render seed `seeds[i]` (default: i)."""
    radiance = load_environment(envmap)
    mi.set_variant(select_relight_variant(variant))
    output_dir = Path(output_dir)
    scene_dir, images_dir = output_dir / "scene", output_dir / "images"
    scene_dir.mkdir(parents=True, exist_ok=True)
    images_dir.mkdir(parents=True, exist_ok=True)
    write_exr(scene_dir / "environment.exr", radiance)
    write_attribute_ply(scene_dir / "mesh.ply", assets)
    lighting = Lighting(scene_dir / "environment.exr", rotation_deg, strength)
    description = scene_description(assets, scene_dir / "mesh.ply", lighting, transparent)
    write_scene_xml(scene_dir / "scene.xml", description, sensor_description(cameras[0], spp, transparent))

    seeds = list(range(len(cameras))) if seeds is None else list(seeds)
    images = render_views(description, cameras, spp, seeds, transparent)
    image_paths = [images_dir / camera.name for camera in cameras]
    for path, image in zip(image_paths, images):
        iio.imwrite(path, to_uint8_srgb(image))
    write_transforms(output_dir / "transforms.json", cameras)
    blender_dir = write_blender_bundle(output_dir / "blender", assets, radiance, rotation_deg, strength)
    video_path = write_video(output_dir / "orbit.mp4", image_paths) if video else None
    CONSOLE.print(f"[bold green]Relit {len(cameras)} views into {output_dir}")
    return RelightResult(images, image_paths, scene_dir / "scene.xml", blender_dir, video_path)


BLENDER_README = """Relit object, ready for Blender (world z up, as in Blender).

1. File > Import > glTF 2.0: choose model.glb. It is stored y-up as glTF wants, and Blender's importer turns
   it back to z-up, so the object comes in at the coordinates of the input data and stands as in the renders.
2. Material: the base color is the mesh's color attribute ("Col" / "Color"): in the Shader Editor connect a
   Color Attribute node to the Principled BSDF's Base Color{material_note}
3. World: Shader Editor > World > add an Environment Texture node, open environment.exr, connect it to the
   Background's Color. The file is already resampled to Blender's equirectangular convention, with the
   rotation ({rotation_deg:g} degrees about +z) and strength ({strength:g}) of the renders baked in: no Mapping
   node is needed and the Background strength stays 1.
4. Render with Cycles (Filmic/AgX view transforms change the look; "Standard" matches the PNG renders).
"""


def write_blender_bundle(
    folder: Path, assets: MaterialAssets, radiance: Float[np.ndarray, "h w 3"], rotation_deg: float, strength: float
) -> Path:
    """model.glb (the export's own, else the mesh with linear albedo as vertex colors), the environment in
    Blender's convention, and a README.txt on loading them."""
    folder.mkdir(parents=True, exist_ok=True)
    albedo, roughness, metallic = assets.mean_values()
    if assets.glb_path is not None:
        shutil.copyfile(assets.glb_path, folder / "model.glb")
        material_note = " (or keep the material model.glb brings)."
    else:
        mesh = assets.mesh.copy()
        colors = np.round(np.clip(assets.vertex_albedo(), 0.0, 1.0) * 255.0).astype(np.uint8)
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colors)
        write_gltf(mesh, folder / "model.glb")
        material_note = (
            f"; set Roughness {roughness:.3f} and Metallic {metallic:.3f} (the means of the per-vertex values;"
            f" mean albedo {albedo[0]:.3f} {albedo[1]:.3f} {albedo[2]:.3f})."
        )
    write_exr(folder / "environment.exr", to_blender_latlong(radiance, rotation_deg, strength))
    (folder / "README.txt").write_text(
        BLENDER_README.format(material_note=material_note, rotation_deg=rotation_deg, strength=strength)
    )
    return folder


def write_video(path: Path, frames: List[Path]) -> Optional[Path]:
    """An H.264 mp4 of the frames with imageio-ffmpeg, else the ffmpeg program; None (said in one line) if
    neither is installed."""
    try:
        import imageio_ffmpeg  # noqa: F401  (only probing whether imageio's ffmpeg plugin can run)

        import imageio.v2 as imageio_v2

        with imageio_v2.get_writer(path, fps=VIDEO_FPS, macro_block_size=1) as writer:
            for frame in frames:
                writer.append_data(iio.imread(frame)[..., :3])
        return path
    except ImportError:
        pass
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        CONSOLE.print("No mp4 written: neither imageio-ffmpeg nor ffmpeg is installed (the PNG frames are there).")
        return None
    pattern = frames[0].parent / "frame_%05d.png"
    command = [ffmpeg, "-y", "-loglevel", "error", "-framerate", str(VIDEO_FPS), "-i", str(pattern)]
    command += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        CONSOLE.print(f"No mp4 written: ffmpeg failed ({result.stderr.strip().splitlines()[-1:]}).")
        return None
    return path


def render_vertex_colors(
    mesh: trimesh.Trimesh,
    colors: Float[np.ndarray, "num_vertices 3"],
    cameras: List[RelightCamera],
    scratch_dir: Path,
    spp: int = 16,
) -> List[Float[np.ndarray, "height width 3"]]:
    """Linear renders of a mesh painted with per-vertex colors (diffuse, under a uniform white sky, so a color
    shows as itself apart from ambient occlusion), e.g. for error maps; scene files go to `scratch_dir`."""
    mi.set_variant(select_relight_variant("auto"))
    scratch_dir.mkdir(parents=True, exist_ok=True)
    vertex_count = len(mesh.vertices)
    assets = MaterialAssets(mesh, np.asarray(colors, dtype=np.float64), np.ones(vertex_count), np.zeros(vertex_count))
    write_attribute_ply(scratch_dir / "mesh.ply", assets)
    write_exr(scratch_dir / "white.exr", np.ones((8, 16, 3), dtype=np.float32))
    lighting = Lighting(scratch_dir / "white.exr")
    description = scene_description(assets, scratch_dir / "mesh.ply", lighting, False, vertex_colors=True)
    return render_views(description, cameras, spp, range(len(cameras)), False, label="Error views")
