"""Ray casting against a triangle mesh (nero-material: first hits of camera rays, visibility of sampled light
directions).

Backed by open3d's Embree BVH (`o3d.t.geometry.RaycastingScene`) on the CPU; tensors on any device are moved to
the CPU for the query and the results moved back. Directions need not be unit length: they are normalized, and all
distances (t, t_max, the self-hit offset) are Euclidean, in the mesh's units.
"""

from __future__ import annotations

import math
from typing import Tuple, Union

import numpy as np
import open3d as o3d
import torch
import trimesh
from jaxtyping import Bool, Float, Int
from torch import Tensor


def _as_numpy(array: Union[np.ndarray, Tensor]) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array)


class MeshRaycaster:
    """First-hit and occlusion queries on a fixed triangle mesh.

    Args:
        vertices: (V, 3) positions.
        faces: (F, 3) vertex indices; counter-clockwise winding seen from outside gives outward normals.
        smooth_normals: return normals interpolated from area-weighted vertex normals at the hit's barycentric
            coordinates (smooth shading); otherwise the flat normal of the hit triangle.
        relative_offset: occlusion rays start this fraction of the mesh's bounding-box diagonal away from their
            origin, so a ray leaving a surface point does not hit the triangle it starts on (float32 hit points
            sit ~1e-7 off the surface; 1e-4 of the diagonal is far below any feature a mesh resolves).
    """

    def __init__(
        self,
        vertices: Union[np.ndarray, Float[Tensor, "num_vertices 3"]],
        faces: Union[np.ndarray, Int[Tensor, "num_faces 3"]],
        smooth_normals: bool = True,
        relative_offset: float = 1e-4,
    ) -> None:
        vertices_np = _as_numpy(vertices).astype(np.float32)
        faces_np = _as_numpy(faces).astype(np.int64)
        if vertices_np.ndim != 2 or vertices_np.shape[1] != 3 or faces_np.ndim != 2 or faces_np.shape[1] != 3:
            raise ValueError(f"MeshRaycaster needs (V, 3) vertices and (F, 3) faces, got {vertices_np.shape} and "
                             f"{faces_np.shape}")
        if len(faces_np) == 0 or faces_np.min() < 0 or faces_np.max() >= len(vertices_np):
            raise ValueError(f"MeshRaycaster needs at least one face indexing {len(vertices_np)} vertices")
        self.scene = o3d.t.geometry.RaycastingScene()
        self.scene.add_triangles(o3d.core.Tensor(vertices_np), o3d.core.Tensor(faces_np.astype(np.uint32)))
        self.faces = torch.from_numpy(faces_np)
        mesh = trimesh.Trimesh(vertices_np, faces_np, process=False)
        self.vertex_normals = torch.from_numpy(np.asarray(mesh.vertex_normals, dtype=np.float32))
        self.smooth_normals = smooth_normals
        self.self_hit_offset = relative_offset * float(np.linalg.norm(np.ptp(vertices_np, axis=0)))

    @staticmethod
    def _rays(origins: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"]) -> o3d.core.Tensor:
        origins, directions = torch.broadcast_tensors(origins, directions)
        unit = torch.nn.functional.normalize(directions.detach(), dim=-1)
        rays = torch.cat([origins.detach(), unit], dim=-1).reshape(-1, 6).to("cpu", torch.float32)
        return o3d.core.Tensor(rays.contiguous().numpy())

    def first_hit(
        self, origins: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"]
    ) -> Tuple[Float[Tensor, "*bs"], Bool[Tensor, "*bs"], Float[Tensor, "*bs 3"], Float[Tensor, "*bs 3"]]:
        """Distance t (inf on a miss), hit mask, unit normals and hit points (both zero on a miss) of each ray.

        Normals keep the mesh's orientation (they may face away from the ray on back faces). Not differentiable.
        """
        batch_shape = torch.broadcast_shapes(origins.shape, directions.shape)[:-1]
        result = self.scene.cast_rays(self._rays(origins, directions))
        t_hit = torch.from_numpy(result["t_hit"].numpy())
        hit = torch.isfinite(t_hit)
        if self.smooth_normals:
            face_ids = torch.from_numpy(result["primitive_ids"].numpy().astype(np.int64))
            face_ids = torch.where(hit, face_ids, torch.zeros_like(face_ids))
            uv = torch.from_numpy(result["primitive_uvs"].numpy())
            barycentric = torch.stack([1.0 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], dim=-1)
            corner_normals = self.vertex_normals[self.faces[face_ids]]
            normals = torch.nn.functional.normalize((barycentric[:, :, None] * corner_normals).sum(dim=1), dim=-1)
        else:
            normals = torch.from_numpy(result["primitive_normals"].numpy())
        normals = torch.where(hit[:, None], normals, torch.zeros_like(normals))
        device, dtype = origins.device, origins.dtype
        t_hit = t_hit.to(device, dtype).reshape(batch_shape)
        hit = hit.to(device).reshape(batch_shape)
        normals = normals.to(device, dtype).reshape(*batch_shape, 3)
        unit = torch.nn.functional.normalize(directions.detach(), dim=-1)
        points = torch.where(hit[..., None], origins.detach() + t_hit[..., None] * unit, torch.zeros_like(normals))
        return t_hit, hit, normals, points

    def occluded(
        self, origins: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"], t_max: float = math.inf
    ) -> Bool[Tensor, "*bs"]:
        """Whether the mesh blocks each ray between `self_hit_offset` and `t_max` from its origin."""
        batch_shape = torch.broadcast_shapes(origins.shape, directions.shape)[:-1]
        blocked = self.scene.test_occlusions(
            self._rays(origins, directions), tnear=self.self_hit_offset, tfar=t_max
        )
        return torch.from_numpy(blocked.numpy()).to(origins.device).reshape(batch_shape)

    def hit_distance(
        self, origins: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"]
    ) -> Float[Tensor, "*bs"]:
        """Distance from each origin to the first hit beyond `self_hit_offset` (inf on a miss), along unit
        `directions`: `occluded` with the distance, for rays that leave a surface point."""
        batch_shape = torch.broadcast_shapes(origins.shape, directions.shape)[:-1]
        unit = torch.nn.functional.normalize(directions.detach(), dim=-1)
        result = self.scene.cast_rays(self._rays(origins.detach() + self.self_hit_offset * unit, unit))
        distance = torch.from_numpy(result["t_hit"].numpy()).to(origins.device, origins.dtype)
        return distance.reshape(batch_shape) + self.self_hit_offset
