"""Ray samplers' geometry: the unit-sphere intersection against hand-computed rays."""

from __future__ import annotations

import torch

from nero_ns.components.samplers import intersect_unit_sphere


def test_sphere_intersection_matches_geometry() -> None:
    origins = torch.tensor([[0.0, 0.0, -3.0], [0.0, 2.0, -3.0]])
    directions = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    near, far, hits = intersect_unit_sphere(origins, directions)
    assert hits.squeeze().tolist() == [True, False]
    assert torch.allclose(near[0], torch.tensor([2.0])) and torch.allclose(far[0], torch.tensor([4.0]))
    assert far[1] > near[1]
