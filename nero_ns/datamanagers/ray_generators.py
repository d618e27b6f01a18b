"""Training rays through a random point of their pixel instead of its center."""

from __future__ import annotations

import torch
from jaxtyping import Int
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.model_components.ray_generators import RayGenerator
from torch import Tensor


class JitteredRayGenerator(RayGenerator):
    """nerfstudio's RayGenerator with each ray moved to a uniform random point of its pixel.

    A pixel of a photo (or of the scene generator, a box filter) is the mean radiance over its area. A ray through
    the center estimates that mean only where the pixel is uniform; at a silhouette it returns all-object or
    all-background while the photo holds a blend. A uniform random point gives the blend in expectation.
    """

    def forward(self, ray_indices: Int[Tensor, "num_rays 3"]) -> RayBundle:
        cameras, rows, columns = ray_indices[:, 0], ray_indices[:, 1], ray_indices[:, 2]
        coords = self.image_coords[rows, columns]
        coords = coords + torch.rand_like(coords) - 0.5
        return self.cameras.generate_rays(camera_indices=cameras.unsqueeze(-1), coords=coords)
