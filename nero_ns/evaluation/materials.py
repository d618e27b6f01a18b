"""`nero-eval materials`: per-vertex materials against ground truth.

- albedo PSNR (linear albedo in [0, 1]) after per-channel scale alignment (albedo and light share the scale);
- roughness MAE and metallic MAE.
GT is either a generator's gt/materials.json (constant materials) or a folder with mesh.ply + albedo.npy,
roughness.npy, metallic.npy (GT maps, looked up at the nearest GT vertex). With `max_distance`, only vertices
within that fraction of the GT bounding radius from the GT surface are scored (so material error is not
confounded with geometry error). With `cameras` (a transforms.json, e.g. the training views), only vertices whose
nearest GT surface point some camera sees are scored: no photo constrains the material of a surface none shows
(the underside of an object on a floor), as image-space albedo metrics of the literature also score only what the
views show. Every scored vertex counts the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import open3d as o3d
import trimesh
from jaxtyping import Float
from rich.table import Table
from scipy.spatial import cKDTree

from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.errors import NeroInputError, friendly_errors
from nero_ns.evaluation.alignment import per_channel_scale
from nero_ns.evaluation.images import write_json
from nero_ns.relight.cameras import read_transforms_cameras
from nero_ns.relight.assets import MaterialAssets, load_exported_assets, load_gt_assets


def raycasting_scene(mesh: trimesh.Trimesh) -> o3d.t.geometry.RaycastingScene:
    """Open3D ray-casting scene of a triangle mesh (distances, closest points, ray hits)."""
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(mesh.vertices.astype(np.float32), mesh.faces.astype(np.uint32))
    return scene


def surface_distance(mesh: trimesh.Trimesh, points: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, "n"]:
    """Unsigned distance of each point to the triangles of `mesh`."""
    distance = raycasting_scene(mesh).compute_distance(o3d.core.Tensor(points.astype(np.float32)))
    return distance.numpy().astype(np.float64)


def seen_by_cameras(
    mesh: trimesh.Trimesh, points: Float[np.ndarray, "n 3"], camera_centers: Float[np.ndarray, "c 3"]
) -> np.ndarray:
    """Whether some camera sees the point of `mesh` nearest each point: the surface faces it and nothing of the
    mesh lies between them. Returns a boolean array of length n."""
    raycaster = raycasting_scene(mesh)
    closest = raycaster.compute_closest_points(o3d.core.Tensor(points.astype(np.float32)))
    normals = mesh.face_normals[closest["primitive_ids"].numpy().astype(np.int64)]
    offset = 1e-4 * float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    surface = closest["points"].numpy().astype(np.float64) + offset * normals
    seen = np.zeros(len(points), dtype=bool)
    for center in camera_centers:
        to_camera = center[None, :] - surface
        distance = np.linalg.norm(to_camera, axis=-1, keepdims=True)
        direction = to_camera / distance
        rays = np.concatenate([surface, direction], axis=-1).astype(np.float32)
        blocked = raycaster.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy() < distance[:, 0]
        seen |= ((normals * direction).sum(-1) > 0.0) & ~blocked
    return seen


def load_gt_materials(gt: Path) -> MaterialAssets:
    """GT materials from gt/materials.json (or the gt/ folder holding it), or from a folder of GT maps."""
    if gt.is_file() and gt.suffix == ".json":
        return load_gt_assets(gt.parent)
    if (gt / "materials.json").is_file():
        return load_gt_assets(gt)
    if (gt / "albedo.npy").is_file():
        return load_exported_assets(gt)
    raise NeroInputError(f"{gt}: neither materials.json nor albedo.npy there; pass SCENE/gt or a folder of GT maps")


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of values in [0, 1] (prediction clipped to [0, 1])."""
    mse = float(np.mean((np.clip(prediction, 0.0, 1.0) - target) ** 2))
    return float(-10.0 * np.log10(max(mse, 1e-10)))


def material_metrics(
    prediction: MaterialAssets,
    gt: MaterialAssets,
    max_distance: Optional[float] = None,
    camera_centers: Optional[Float[np.ndarray, "c 3"]] = None,
) -> Dict:
    """Albedo PSNR (scale-aligned, and raw), roughness / metallic MAE over the scored vertices."""
    vertices = prediction.mesh.vertices
    keep = np.ones(len(vertices), dtype=bool)
    if camera_centers is not None:
        keep = seen_by_cameras(gt.mesh, vertices, camera_centers)
        if not keep.any():
            raise NeroInputError("no camera of --cameras sees the GT surface; pass the transforms.json of this scene")
    if max_distance is not None:
        _, radius = trimesh.nsphere.minimum_nsphere(gt.mesh)  # R, as in nero_ns.evaluation.geometry
        keep &= surface_distance(gt.mesh, vertices) <= max_distance * radius
        if not keep.any():
            raise NeroInputError(
                f"no predicted vertex lies within --max-distance {max_distance} of the GT surface; "
                "check that the mesh is in the GT frame or raise --max-distance"
            )
    if gt.per_vertex:
        nearest = cKDTree(gt.mesh.vertices).query(vertices[keep])[1]
        gt_albedo = gt.vertex_albedo()[nearest]
        gt_roughness, gt_metallic = np.asarray(gt.roughness)[nearest], np.asarray(gt.metallic)[nearest]
    else:
        gt_albedo = np.broadcast_to(np.asarray(gt.albedo, dtype=np.float64), (int(keep.sum()), 3))
        gt_roughness, gt_metallic = float(gt.roughness), float(gt.metallic)
    albedo = prediction.vertex_albedo()[keep]
    roughness = np.broadcast_to(np.asarray(prediction.roughness, dtype=np.float64), (len(vertices),))[keep]
    metallic = np.broadcast_to(np.asarray(prediction.metallic, dtype=np.float64), (len(vertices),))[keep]
    scale = per_channel_scale(albedo, gt_albedo)
    return {
        "albedo_psnr": psnr(albedo * scale, gt_albedo),
        "albedo_psnr_unaligned": psnr(albedo, gt_albedo),
        "albedo_scale": scale.tolist(),
        "roughness_mae": float(np.mean(np.abs(roughness - gt_roughness))),
        "metallic_mae": float(np.mean(np.abs(metallic - gt_metallic))),
        "num_vertices": int(keep.sum()),
        "fraction_scored": float(keep.mean()),
    }


def print_metric_table(title: str, metrics: Dict) -> None:
    """Rich table of named metrics (lists shown as space-separated values)."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        shown = " ".join(f"{v:.4f}" for v in value) if isinstance(value, list) else f"{value:.6g}"
        table.add_row(name, shown)
    CONSOLE.print(table)


@dataclass
class MaterialEvaluation:
    """Albedo PSNR (per-channel scale-aligned), roughness MAE and metallic MAE of per-vertex materials."""

    assets: Path
    """Folder with mesh.ply + albedo.npy, roughness.npy, metallic.npy (what `ns-export nero-materials` writes)."""
    gt: Path
    """SCENE/gt (or its materials.json), or a folder of GT maps (mesh.ply + *.npy)."""
    max_distance: Optional[float] = None
    """Score only vertices within this fraction of the GT radius from the GT surface (e.g. 0.02)."""
    cameras: Optional[Path] = None
    """Score only vertices that a camera of this transforms.json (in the GT frame, e.g. SCENE/transforms.json)
    sees; surfaces no photo shows are left out."""
    json: Optional[Path] = None
    """Also write the metrics to this JSON file."""

    def main(self) -> Dict:
        """Compute, print as a table, optionally write JSON."""
        with friendly_errors():
            centers = None
            if self.cameras is not None:
                centers = np.stack([view.c2w[:3, 3] for view in read_transforms_cameras(self.cameras)])
            metrics = material_metrics(
                load_exported_assets(self.assets), load_gt_materials(self.gt), self.max_distance, centers
            )
        print_metric_table(f"materials {self.assets} vs {self.gt}", metrics)
        write_json(self.json, {"assets": str(self.assets), "gt": str(self.gt), **metrics})
        return metrics
