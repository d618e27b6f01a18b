"""Textured PBR export of a nero-material model: mesh, per-vertex and baked materials, glTF/OBJ, environment.

The mesh is the nero-mesh one (`export_mesh`, same marching cubes, cleaning and SDF normals), extracted in the
normalized frame where the materials are queried, then mapped to the output frame with `normalized_to_input`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import imageio.v3 as iio
import numpy as np
import torch
import trimesh
from jaxtyping import Float, UInt8
from PIL import Image
from torch import Tensor
from trimesh.visual.material import PBRMaterial
from trimesh.visual.texture import TextureVisuals

from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.utils.rich_utils import CONSOLE, get_progress

from nero_ns.colors import linear_to_srgb
from nero_ns.errors import NeroInputError
from nero_ns.exporters.mesh_export import (
    MeshExportOptions,
    _module_device,
    export_mesh,
    normalized_to_input,
)
from nero_ns.exporters.texture_baking import dilate, rasterize_uv, splat_texels, surface_points, unwrap_uv
from nero_ns.io.latlong import ENVMAP_CONVENTION
from nero_ns.io.meshes import write_gltf

MATERIAL_NAME = "nero_material"

FILE_DESCRIPTIONS: Dict[str, str] = {
    "mesh.ply": "cleaned mesh with SDF normals; vertex colors = albedo in sRGB (quick look)",
    "albedo.npy": "float32 [V,3] linear albedo (base color) per vertex of mesh.ply, same order",
    "roughness.npy": "float32 [V] GGX roughness per vertex of mesh.ply",
    "metallic.npy": "float32 [V] metallic per vertex of mesh.ply",
    "model.glb": "glTF 2.0 binary, y-up as glTF requires (the frame's (x, y, z) stored as (x, z, -y); importers "
    "such as Blender's turn it back): UV-unwrapped mesh with normals, pbrMetallicRoughness material "
    "(baseColorTexture albedo.png, metallicRoughnessTexture metallic_roughness.png, factors 1)",
    "model.obj": "UV-unwrapped mesh with normals (same vertices as model.glb), material in model.mtl",
    "model.mtl": "OBJ material: map_Kd albedo.png; PBR extension Pr/Pm (mean roughness/metallic), "
    "map_Pr roughness.png, map_Pm metallic.png (Blender reads these)",
    "albedo.png": "8-bit sRGB albedo texture",
    "metallic_roughness.png": "8-bit linear glTF packing: R = 255 (unused), G = roughness, B = metallic",
    "roughness.png": "8-bit linear grayscale roughness texture (for map_Pr)",
    "metallic.png": "8-bit linear grayscale metallic texture (for map_Pm)",
    "environment.hdr": "learned environment light (the floor light where directions from the object's center meet the "
    "floor), Radiance RGBE lat-long map of linear radiance",
    "environment.png": "tone-mapped preview of environment.hdr (radiance / mean, x / (1 + x), sRGB)",
    "materials.json": "this description, machine-readable",
    "README.txt": "this description",
}


def material_mesh_options() -> MeshExportOptions:
    """The mesh options of a materials export: the nero-mesh defaults, decimated to 100k faces so that the UV
    unwrapping and the textures stay light."""
    return MeshExportOptions(target_faces=100_000)


@dataclass
class MaterialExportOptions:
    """How to bake and write the materials and the environment."""

    texture_size: int = 1024
    """Width and height of the baked textures, in texels."""
    texture_padding: int = 4
    """Texels between UV charts (asked of xatlas) and texels the charts are dilated into the empty space."""
    envmap_height: int = 256
    """Rows of the lat-long environment map (its width is twice that)."""


def export_materials(
    model: torch.nn.Module,
    dataparser_outputs: DataparserOutputs,
    mesh_options: MeshExportOptions,
    options: MaterialExportOptions,
    output_dir: Path,
) -> Dict[str, Path]:
    """Write every file of FILE_DESCRIPTIONS into `output_dir` for a model with `query_sdf`, `query_materials` and
    `environment_map` (see nero_ns.models.nero_material); returns their paths by name."""
    check_material_options(options)
    output_dir.mkdir(parents=True, exist_ok=True)
    device = _module_device(model)
    normalized = export_mesh(model, dataparser_outputs, dataclasses.replace(mesh_options, frame="normalized"))
    vertices = torch.as_tensor(normalized.vertices, dtype=torch.float32)
    vertex_materials = query_materials_chunked(model, vertices, mesh_options.chunk_size, device, "vertices")

    CONSOLE.print(f"UV unwrapping {len(normalized.faces)} faces with xatlas")
    atlas = unwrap_uv(normalized.vertices, normalized.faces, options.texture_size, options.texture_padding)
    samples = rasterize_uv(atlas.uvs, atlas.faces, options.texture_size)
    points = surface_points(samples, vertices[torch.as_tensor(atlas.source_vertex)], torch.as_tensor(atlas.faces))
    texel_materials = query_materials_chunked(model, points, mesh_options.chunk_size, device, "texels")
    textures = {
        name: dilate(*splat_texels(values, samples, options.texture_size), options.texture_padding)[0].numpy()
        for name, values in texel_materials.items()
    }

    mesh_arrays = (normalized.vertices, normalized.faces, normalized.vertex_normals)
    seam_split = atlas.source_vertex
    atlas_arrays = (normalized.vertices[seam_split], atlas.faces, normalized.vertex_normals[seam_split])
    if mesh_options.frame == "input":
        transform = dataparser_outputs.dataparser_transform.double().cpu().numpy()
        scale = float(dataparser_outputs.dataparser_scale)
        mesh_arrays = normalized_to_input(*mesh_arrays, transform, scale)
        atlas_arrays = normalized_to_input(*atlas_arrays, transform, scale)
    mesh = trimesh.Trimesh(*mesh_arrays[:2], vertex_normals=mesh_arrays[2], process=False)

    paths = {name: output_dir / name for name in FILE_DESCRIPTIONS}
    _write_vertex_materials(mesh, vertex_materials, paths)
    images = _texture_images(textures)
    for name, image in images.items():
        image.save(paths[name])
    textured = trimesh.Trimesh(
        *atlas_arrays[:2], vertex_normals=atlas_arrays[2], process=False,
        visual=TextureVisuals(
            uv=atlas.uvs,
            material=PBRMaterial(
                name=MATERIAL_NAME,
                baseColorTexture=images["albedo.png"],
                metallicRoughnessTexture=images["metallic_roughness.png"],
                metallicFactor=1.0,
                roughnessFactor=1.0,
            ),
        ),
    )
    write_gltf(textured, paths["model.glb"])
    _write_obj(textured, texel_materials, paths)
    environment = model.environment_map(options.envmap_height).detach().float().cpu().numpy()
    write_environment(environment, paths["environment.hdr"], paths["environment.png"])
    _write_description(paths, mesh_options, options, dataparser_outputs, mesh, textured, environment.shape)
    CONSOLE.print(
        f"Materials: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces; textured model {len(textured.vertices)} "
        f"vertices, {samples.texel_index.shape[0]} baked texels of {options.texture_size}^2 "
        f"({mesh_options.frame} frame)"
    )
    return paths


def check_material_options(options: MaterialExportOptions) -> None:
    """One-line errors for option values that cannot work."""
    if options.texture_size < 8:
        raise NeroInputError(f"--texture-size {options.texture_size}: use at least 8 texels (1024 is typical)")
    if not 0 <= options.texture_padding < options.texture_size // 4:
        raise NeroInputError(
            f"--texture-padding {options.texture_padding}: use 0 to {options.texture_size // 4 - 1} texels "
            f"for --texture-size {options.texture_size} (4 is typical)"
        )
    if options.envmap_height < 2:
        raise NeroInputError(f"--envmap-height {options.envmap_height}: use at least 2 rows (256 is typical)")


def query_materials_chunked(
    model: torch.nn.Module, points: Float[Tensor, "num_points 3"], chunk_size: int, device: torch.device, what: str
) -> Dict[str, Float[Tensor, "num_points channels"]]:
    """`model.query_materials` at normalized-frame `points`, in chunks of `chunk_size`, on the CPU."""
    chunks: Dict[str, List[Tensor]] = {"albedo": [], "roughness": [], "metallic": []}
    progress = get_progress(f"Querying materials at {points.shape[0]} {what}", suffix="chunks")
    with progress, torch.no_grad():
        for start in progress.track(range(0, points.shape[0], chunk_size)):
            materials = model.query_materials(points[start : start + chunk_size].to(device))
            for name, values in chunks.items():
                values.append(materials[name].float().reshape(-1, 3 if name == "albedo" else 1).cpu())
    return {name: torch.cat(values) if values else torch.zeros(0, 3 if name == "albedo" else 1)
            for name, values in chunks.items()}


def write_environment(
    radiance: Float[np.ndarray, "height width 3"], hdr_path: Path, preview_path: Path
) -> None:
    """Radiance RGBE file (imageio's OpenCV writer: no download needed) and a tone-mapped sRGB preview."""
    iio.imwrite(hdr_path, np.ascontiguousarray(radiance, dtype=np.float32), plugin="opencv")
    Image.fromarray(tone_mapped(radiance)).save(preview_path)


def tone_mapped(radiance: Float[np.ndarray, "height width 3"]) -> UInt8[np.ndarray, "height width 3"]:
    """8-bit sRGB preview of linear radiance: divided by its mean, then x / (1 + x), so a sun does not wash out the
    sky."""
    exposed = radiance / max(float(radiance.mean()), 1e-8)
    return _to_uint8(linear_to_srgb(exposed / (1.0 + exposed)))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def _texture_images(textures: Dict[str, np.ndarray]) -> Dict[str, Image.Image]:
    """The PNG images of the baked (linear) textures."""
    roughness, metallic = _to_uint8(textures["roughness"][..., 0]), _to_uint8(textures["metallic"][..., 0])
    unused = np.full_like(roughness, 255)
    return {
        "albedo.png": Image.fromarray(_to_uint8(linear_to_srgb(textures["albedo"]))),
        "metallic_roughness.png": Image.fromarray(np.stack([unused, roughness, metallic], axis=-1)),
        "roughness.png": Image.fromarray(roughness),
        "metallic.png": Image.fromarray(metallic),
    }


def _write_vertex_materials(mesh: trimesh.Trimesh, materials: Dict[str, Tensor], paths: Dict[str, Path]) -> None:
    """mesh.ply with sRGB albedo vertex colors, and the per-vertex arrays in the same vertex order."""
    albedo = materials["albedo"].numpy()
    mesh.visual.vertex_colors = _to_uint8(linear_to_srgb(albedo))
    mesh.export(paths["mesh.ply"])
    np.save(paths["albedo.npy"], albedo.astype(np.float32))
    np.save(paths["roughness.npy"], materials["roughness"].numpy()[:, 0].astype(np.float32))
    np.save(paths["metallic.npy"], materials["metallic"].numpy()[:, 0].astype(np.float32))


def _write_obj(textured: trimesh.Trimesh, materials: Dict[str, Tensor], paths: Dict[str, Path]) -> None:
    """model.obj through trimesh, with our own model.mtl (trimesh's knows no PBR keys)."""
    obj_text = trimesh.exchange.obj.export_obj(
        textured, include_normals=True, include_texture=True, write_texture=False, mtl_name=paths["model.mtl"].name
    )
    paths["model.obj"].write_text(obj_text)
    paths["model.mtl"].write_text(
        f"newmtl {MATERIAL_NAME}\n"
        "Kd 1.0 1.0 1.0\n"
        f"Pr {float(materials['roughness'].mean()):.6f}\n"
        f"Pm {float(materials['metallic'].mean()):.6f}\n"
        f"map_Kd {paths['albedo.png'].name}\n"
        f"map_Pr {paths['roughness.png'].name}\n"
        f"map_Pm {paths['metallic.png'].name}\n"
    )


def _write_description(
    paths: Dict[str, Path],
    mesh_options: MeshExportOptions,
    options: MaterialExportOptions,
    dataparser_outputs: DataparserOutputs,
    mesh: trimesh.Trimesh,
    textured: trimesh.Trimesh,
    environment_shape: tuple,
) -> None:
    """materials.json and README.txt: what each file is, the frame, the environment convention."""
    transform = dataparser_outputs.dataparser_transform.double().cpu().numpy()
    if mesh_options.frame == "input":
        frame = "input: coordinates of the dataset's transforms.json"
    else:
        frame = "normalized: the model's frame, p_normalized = s * (R @ p_input + t) with the transform below"
    description = {
        "frame": frame,
        "dataparser_transform": transform.tolist(),
        "dataparser_scale": float(dataparser_outputs.dataparser_scale),
        "files": FILE_DESCRIPTIONS,
        "mesh": {"vertices": len(mesh.vertices), "faces": len(mesh.faces)},
        "textured_model": {
            "vertices": len(textured.vertices),
            "faces": len(textured.faces),
            "texture_size": options.texture_size,
            "texture_padding": options.texture_padding,
            "uv_origin": "bottom-left of the images (OBJ convention; the glb stores glTF's top-left equivalent)",
        },
        "environment": {
            "height": environment_shape[0],
            "width": environment_shape[1],
            "convention": ENVMAP_CONVENTION,
            "axes": "the normalized frame's axes, which are the input frame's axes when the dataparser rotation "
            "R above is the identity (nero-data always uses the identity)",
        },
    }
    paths["materials.json"].write_text(json.dumps(description, indent=2) + "\n")
    lines = ["nero-materials export (ns-export nero-materials)", "", f"Frame: {frame}", ""]
    lines += [f"{name:24s}{text}" for name, text in FILE_DESCRIPTIONS.items()]
    lines += ["", f"Environment ({environment_shape[0]}x{environment_shape[1]}): {ENVMAP_CONVENTION}",
              description["environment"]["axes"], ""]
    paths["README.txt"].write_text("\n".join(lines))
