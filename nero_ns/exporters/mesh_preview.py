"""A picture of an exported mesh: a few input photos, each beside the mesh seen from the same camera.

The mesh is ray cast (`MeshRaycaster`) from the cameras of the input `transforms.json`, in the input data's
coordinates (where `ns-export nero-mesh` writes it), and shaded grey with a light at the camera, so a person sees at
a glance whether the shape is the object's before opening a 3D viewer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Sequence

import numpy as np
import torch
import trimesh
from jaxtyping import Float, UInt8
from PIL import Image

from nero_ns.components.raycast import MeshRaycaster
from nero_ns.relight.cameras import RelightCamera, read_transforms_cameras


def camera_rays(camera: RelightCamera) -> tuple[Float[torch.Tensor, "h w 3"], Float[torch.Tensor, "h w 3"]]:
    """Origins and unit directions through every pixel centre of an OpenGL-convention camera."""
    rows, columns = torch.meshgrid(
        torch.arange(camera.height, dtype=torch.float64) + 0.5,
        torch.arange(camera.width, dtype=torch.float64) + 0.5,
        indexing="ij",
    )
    local = torch.stack(
        [(columns - camera.cx) / camera.fl_x, -(rows - camera.cy) / camera.fl_y, -torch.ones_like(rows)], dim=-1
    )
    c2w = torch.as_tensor(np.asarray(camera.c2w), dtype=torch.float64)
    directions = torch.nn.functional.normalize(local @ c2w[:3, :3].T, dim=-1)
    origins = c2w[:3, 3].expand_as(directions)
    return origins.float(), directions.float()


def shaded_view(raycaster: MeshRaycaster, camera: RelightCamera) -> UInt8[np.ndarray, "h w 3"]:
    """The mesh from `camera`: grey, lit from the camera (|n . v|), on white."""
    origins, directions = camera_rays(camera)
    _, hit, normals, _ = raycaster.first_hit(origins, directions)
    facing = (normals * directions).sum(-1).abs()
    grey = torch.where(hit, 0.15 + 0.8 * facing, torch.ones_like(facing))
    return (grey.clamp(0, 1)[..., None].expand(-1, -1, 3).numpy() * 255).astype(np.uint8)


def write_mesh_preview(
    mesh_path: Path, transforms: Path, output: Path, num_views: int = 3, height: int = 256
) -> Path:
    """Write `output` (PNG): `num_views` input photos spread over the capture, each above the mesh from its camera."""
    mesh = trimesh.load(mesh_path, force="mesh")
    raycaster = MeshRaycaster(mesh.vertices, mesh.faces)
    cameras = read_transforms_cameras(transforms)
    frames = json.loads(Path(transforms).read_text())["frames"]
    picks: Sequence[int] = np.linspace(0, len(cameras) - 1, num_views).round().astype(int)
    columns: List[np.ndarray] = []
    for index in picks:
        camera = cameras[index].resized(max(1, round(cameras[index].width * height / cameras[index].height)))
        with Image.open(Path(transforms).parent / frames[index]["file_path"]) as photo:
            pixels = np.asarray(photo.convert("RGB").resize((camera.width, camera.height), Image.BILINEAR))
        columns.append(np.concatenate([pixels, shaded_view(raycaster, camera)], axis=0))
    output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(columns, axis=1)).save(output)
    return output
