"""The nero-shape geometry that nero-material adopts: the SDF and the far field of a nero-shape run, the plane the
object stands on, and a mesh of the SDF that rays are cast against, with the one rule for what a ray meets first.

The mesh is extracted from the SDF once, on first use, and then kept in every nero-material checkpoint. The support
plane is nero-shape's: the SDF was trained beside it, and nero-material cuts the mesh at it and lights what meets it
with the floor light (`nero_ns.models.scene_light`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from jaxtyping import Bool, Float
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn

from nero_ns.components.compositing import alphas_from_densities, weights_from_alphas
from nero_ns.components.marching_cubes import extract_sdf_mesh
from nero_ns.components.raycast import MeshRaycaster
from nero_ns.components.samplers import InverseDistanceSampler, intersect_unit_sphere
from nero_ns.components.support_plane import SupportPlane
from nero_ns.errors import NeroInputError
from nero_ns.models.nero_shape import NeroShapeModel


@dataclass
class FirstHits:
    """What each ray meets first: the object, the floor (the support plane), or nothing (neither mask is set)."""

    object: Bool[Tensor, "*bs"]
    floor: Bool[Tensor, "*bs"]
    floor_points: Float[Tensor, "*bs 3"]
    """Where each ray meets the plane (its origin where it does not)."""
    object_distance: Optional[Float[Tensor, "*bs"]] = None
    """Camera rays only: distance to the mesh (inf on a miss), whether or not the floor comes first."""
    object_points: Optional[Float[Tensor, "*bs 3"]] = None
    """Camera rays only: where each ray meets the mesh (zeros on a miss)."""


class ShapeGeometry(nn.Module):
    """nero-shape's SDF (frozen unless `trainable`) and far field (frozen), its support plane, and the ray-casting mesh.

    Args:
        shape_model: the loaded nero-shape model (`nero_ns.models.shape_run.load_shape_run`).
        source: its config.yml, named by errors.
        mesh_resolution: marching-cubes samples per axis of the ray-casting mesh.
        use_support_plane: take nero-shape's support plane; when its run has none (trained before the plane existed, or
            with cut-at-floor off), look for one in `sparse_points`.
        trainable: leave the SDF's parameters trainable (fine-tuning through the shading normals).
        sparse_points: the dataset's sparse points (normalized frame), if any.
    """

    def __init__(
        self,
        shape_model: NeroShapeModel,
        source: Path,
        mesh_resolution: int,
        use_support_plane: bool,
        trainable: bool,
        sparse_points: Optional[Float[Tensor, "num_points 3"]] = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.mesh_resolution = mesh_resolution
        # nero-shape parts are submodules, so their (possibly fine-tuned) weights travel in nero-material checkpoints.
        self.sdf_field = shape_model.sdf_field.requires_grad_(trainable)
        self.far_field = shape_model.far_field.requires_grad_(False)
        self.outside_sampler = InverseDistanceSampler(num_samples=shape_model.config.num_outside_samples)
        self.support_plane = SupportPlane()
        if use_support_plane and shape_model.support_plane.has_plane:
            self.support_plane.set_plane(shape_model.support_plane.plane)
        elif use_support_plane:
            self.support_plane.fit(sparse_points)
        # The ray-casting mesh: empty until first needed, then extracted once and saved with every checkpoint.
        self.register_buffer("mesh_vertices", torch.zeros(0, 3))
        self.register_buffer("mesh_faces", torch.zeros(0, 3, dtype=torch.long))
        self._raycaster: Optional[MeshRaycaster] = None

    # ------------------------------------------------------------------ the ray-casting mesh
    @property
    def raycaster(self) -> MeshRaycaster:
        """Ray caster on the nero-shape mesh, extracting the mesh from the SDF the first time (no checkpoint had it)."""
        if self._raycaster is None:
            if self.mesh_faces.shape[0] == 0:
                self._extract_mesh()
            self._raycaster = MeshRaycaster(self.mesh_vertices, self.mesh_faces)
        return self._raycaster

    def raycaster_vertices(self) -> Float[Tensor, "num_vertices 3"]:
        """Vertices of the ray-casting mesh (extracted on first use)."""
        _ = self.raycaster
        return self.mesh_vertices

    def _extract_mesh(self) -> None:
        resolution = self.mesh_resolution
        CONSOLE.print(f"Extracting the nero-shape mesh at {resolution}^3 for ray casting (once; kept in checkpoints)")
        device = self.mesh_vertices.device
        vertices, faces = extract_sdf_mesh(
            self.query_sdf, resolution, block_resolution=64, chunk_size=65536, device=device
        )
        if len(faces) == 0:
            raise NeroInputError(
                f"{self.source}: the nero-shape SDF has no surface inside the unit sphere at resolution "
                f"{resolution}; train nero-shape longer or raise --pipeline.model.mesh-resolution"
            )
        self.mesh_vertices = torch.as_tensor(vertices, dtype=torch.float32, device=device)
        self.mesh_faces = torch.as_tensor(faces, dtype=torch.long, device=device)
        CONSOLE.print(f"nero-shape mesh: {len(vertices)} vertices, {len(faces)} faces")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Take the mesh of the checkpoint whatever its size (the buffers start empty)."""
        for name in ("mesh_vertices", "mesh_faces"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=self.mesh_vertices.device))
        self._raycaster = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ queries
    def query_sdf(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
        """Signed distance of the nero-shape geometry in the normalized frame (negative inside), cut at the support
        plane when there is one: the ray-casting mesh and the exports stop at the floor."""
        return self.support_plane.clip_sdf(positions, self.sdf_field.get_sdf(positions))

    def normals(self, points: Float[Tensor, "num 3"], create_graph: bool) -> Float[Tensor, "num 3"]:
        """Unit SDF gradient at surface points; with `create_graph`, differentiable with respect to the SDF."""
        _, _, gradient = self.sdf_field.sdf_feature_gradient(points, create_graph=create_graph)
        return torch.nn.functional.normalize(gradient, dim=-1)

    def first_hits(
        self, origins: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"], from_surface: bool = False
    ) -> FirstHits:
        """What rays (unit directions) meet first. The floor is not in the mesh: a ray that meets both sees the
        object only if the object comes first, and not within the ray caster's self-hit offset of the floor, since
        the mesh's flat base lies on the floor and is hidden by it.

        Camera rays get the object's hit points and distances. Rays leaving a surface point (`from_surface`) skip
        the surface they start on, and are cast to their hit only where they also meet the floor (faster)."""
        if from_surface:
            meets_object = self.raycaster.occluded(origins, directions)
            object_distance = object_points = None
        else:
            object_distance, meets_object, _, object_points = self.raycaster.first_hit(origins, directions)
        meets_floor, floor_points, floor_distance = self.support_plane.intersect(origins, directions)
        both = meets_object & meets_floor
        if both.any():
            if object_distance is None:
                distance = self.raycaster.hit_distance(origins[both], directions[both])
            else:
                distance = object_distance[both]
            meets_object[both] = distance < floor_distance[both] - self.raycaster.self_hit_offset
        return FirstHits(meets_object, meets_floor & ~meets_object, floor_points, object_distance, object_points)

    def far_field_radiance(self, ray_bundle: RayBundle) -> Float[Tensor, "num_rays 3"]:
        """nero-shape's far field volume rendered from the sphere exit (frozen), linear RGB."""
        with torch.no_grad():
            _, exit_distance, _ = intersect_unit_sphere(ray_bundle.origins, ray_bundle.directions)
            samples = self.outside_sampler(ray_bundle, exit_distance, jitter=False)
            density, rgb = self.far_field(samples.frustums.get_positions(), samples.frustums.directions)
            assert samples.deltas is not None
            weights = weights_from_alphas(alphas_from_densities(density, samples.deltas))
            return (weights * rgb).sum(dim=1)
