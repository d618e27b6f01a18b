"""What gets relit: a triangle mesh with PBR materials, either per vertex (a nero-material export folder: mesh.ply,
albedo.npy [V, 3], roughness.npy [V] or [V, 1], metallic.npy likewise; also the generator's GT of a two-material
object) or constant (the generator's GT of a one-material object)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import trimesh
from jaxtyping import Float

from nero_ns.errors import NeroInputError
from nero_ns.io.meshes import load_mesh

MATERIAL_ARRAYS = ("albedo", "roughness", "metallic")
"""Per-vertex arrays an export folder holds next to mesh.ply, as <name>.npy."""

Color = Union[Tuple[float, float, float], Float[np.ndarray, "num_vertices 3"]]
Scalar = Union[float, Float[np.ndarray, "num_vertices"]]


@dataclass
class MaterialAssets:
    """A mesh (world frame, z up) and its principled-BSDF parameters: constants or one value per vertex."""

    mesh: trimesh.Trimesh
    albedo: Color
    roughness: Scalar
    metallic: Scalar
    glb_path: Optional[Path] = None
    """A ready glTF of the same object (the nero-material export's model.glb), copied into the Blender bundle."""

    @property
    def per_vertex(self) -> bool:
        return isinstance(self.albedo, np.ndarray)

    def vertex_albedo(self) -> Float[np.ndarray, "num_vertices 3"]:
        """Albedo of every vertex (constants broadcast)."""
        return np.broadcast_to(np.asarray(self.albedo, dtype=np.float64), (len(self.mesh.vertices), 3))

    def mean_values(self) -> Tuple[Tuple[float, float, float], float, float]:
        """Mean albedo, roughness, metallic (for renderers that take one value per object)."""
        albedo = tuple(float(c) for c in self.vertex_albedo().mean(0))
        return albedo, float(np.mean(self.roughness)), float(np.mean(self.metallic))


def load_exported_assets(folder: Path) -> MaterialAssets:
    """mesh.ply + albedo.npy/roughness.npy/metallic.npy of a nero-material export folder, checked against each other."""
    folder = Path(folder)
    if not (folder / "mesh.ply").is_file():
        raise NeroInputError(f"{folder}: no mesh.ply; pass the folder `ns-export nero-materials` wrote as --assets")
    mesh = load_mesh(folder / "mesh.ply", keep_vertices=True)
    arrays = {}
    for name in MATERIAL_ARRAYS:
        path = folder / f"{name}.npy"
        if not path.is_file():
            raise NeroInputError(f"{path}: not found; an --assets folder needs mesh.ply and {name}.npy")
        try:
            values = np.load(path).astype(np.float64)
        except Exception as error:  # numpy raises ValueError/OSError/UnpicklingError for bad files
            raise NeroInputError(f"{path}: cannot read it with numpy ({error}); re-export the materials") from error
        expected = (len(mesh.vertices), 3) if name == "albedo" else (len(mesh.vertices),)
        values = values.reshape(len(values), -1).squeeze(-1) if name != "albedo" and values.ndim == 2 else values
        if values.shape != expected or not np.isfinite(values).all():
            raise NeroInputError(
                f"{path}: shape {values.shape} (or non-finite values), expected finite {expected} for the "
                f"{len(mesh.vertices)} vertices of mesh.ply; re-export the materials"
            )
        arrays[name] = np.clip(values, 0.0, 1.0)
    glb = folder / "model.glb"
    glb_path = glb if glb.is_file() else None
    return MaterialAssets(mesh, arrays["albedo"], arrays["roughness"], arrays["metallic"], glb_path)


def load_gt_assets(gt_dir: Path) -> MaterialAssets:
    """The generator's ground truth: gt/mesh.ply with the constant materials of gt/materials.json, or with the
    per-vertex arrays beside it (albedo.npy, roughness.npy, metallic.npy) where the object has several materials."""
    gt_dir = Path(gt_dir)
    materials_path = gt_dir / "materials.json"
    if not materials_path.is_file():
        raise NeroInputError(f"{materials_path}: not found; pass the gt/ folder of a scene written by nero-synth")
    if (gt_dir / "albedo.npy").is_file():
        return load_exported_assets(gt_dir)
    materials = json.loads(materials_path.read_text())
    mesh = load_mesh(gt_dir / "mesh.ply", keep_vertices=True)
    return MaterialAssets(
        mesh, tuple(materials["base_color"]), float(materials["roughness"]), float(materials["metallic"])
    )


def write_attribute_ply(path: Path, assets: MaterialAssets) -> None:
    """Binary PLY with positions, vertex normals and (per-vertex materials only) the attributes Mitsuba's loader
    turns into `vertex_albedo_color`, `vertex_roughness`, `vertex_metallic` for `mesh_attribute` textures."""
    mesh = assets.mesh
    columns = {
        "x": mesh.vertices[:, 0], "y": mesh.vertices[:, 1], "z": mesh.vertices[:, 2],
        "nx": mesh.vertex_normals[:, 0], "ny": mesh.vertex_normals[:, 1], "nz": mesh.vertex_normals[:, 2],
    }
    if assets.per_vertex:
        albedo = assets.vertex_albedo()
        columns.update({"albedo_r": albedo[:, 0], "albedo_g": albedo[:, 1], "albedo_b": albedo[:, 2]})
        columns.update({"roughness_x": assets.roughness, "metallic_x": assets.metallic})
    vertices = np.empty(len(mesh.vertices), dtype=[(name, "<f4") for name in columns])
    for name, values in columns.items():
        vertices[name] = values
    faces = np.empty(len(mesh.faces), dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    faces["count"], faces["indices"] = 3, mesh.faces
    header = (
        ["ply", "format binary_little_endian 1.0", f"element vertex {len(vertices)}"]
        + [f"property float {name}" for name in columns]
        + [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        file.write(("\n".join(header) + "\n").encode("ascii"))
        file.write(vertices.tobytes())
        file.write(faces.tobytes())
