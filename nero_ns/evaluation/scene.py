"""`nero-eval scene`: every evaluation that applies to a run's outputs on a scene written by nero-synth.

    geometry   --mesh (or ASSETS/mesh.ply) vs gt/mesh.ply; per-vertex error rendered on the mesh (PNG)
    materials  --assets vs gt/materials.json
    relight    --relit (renders from gt/relight cameras) vs gt/relight; with --assets but no --relit, the assets
               are first relit under gt/env_relight.exr with nero-relight; GT | ours | difference PNGs
    relight_ceiling   with --assets: the true mesh and materials relit and scored the same way, the best score this
               path reaches on the scene (resampling the materials onto vertices and Monte Carlo noise keep it finite)
    images     --test-renders vs gt/test
All results go to OUTPUT_DIR/metrics.json, figures to OUTPUT_DIR/figures/.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional

import imageio.v3 as iio
import matplotlib
import numpy as np
import trimesh
from jaxtyping import Float


from nero_ns.colors import linear_to_srgb
from nero_ns.errors import NeroInputError, friendly_errors
from nero_ns.evaluation.geometry import geometry_metrics
from nero_ns.evaluation.images import evaluate_images, print_table, write_json
from nero_ns.evaluation.materials import load_gt_materials, material_metrics, print_metric_table, surface_distance
from nero_ns.evaluation.relighting import evaluate_relighting
from nero_ns.io.meshes import load_mesh
from nero_ns.relight import (
    MaterialAssets,
    load_exported_assets,
    load_gt_assets,
    orbit_camera_path,
    read_transforms_cameras,
    relight,
)
from nero_ns.relight.relight import render_vertex_colors

ERROR_COLORMAP = "viridis"


def geometry_error_figure(
    mesh: trimesh.Trimesh, gt: trimesh.Trimesh, figure_path: Path, error_cap: float = 0.02,
    num_views: int = 4, resolution: int = 256,
) -> Float[np.ndarray, "num_vertices"]:
    """Distance of each vertex of `mesh` to the GT surface (in GT radii), drawn with a colormap capped at
    `error_cap` on the mesh from `num_views` orbit views side by side; returns the distances."""
    _, radius = trimesh.nsphere.minimum_nsphere(gt)
    error = surface_distance(gt, mesh.vertices) / radius
    colors = matplotlib.colormaps[ERROR_COLORMAP](np.clip(error / error_cap, 0.0, 1.0))[:, :3]
    linear_colors = np.clip(colors, 0.0, 1.0) ** 2.2  # the colormap is sRGB; the renderer works in linear
    center = 0.5 * (mesh.vertices.min(0) + mesh.vertices.max(0))
    extent = float(np.linalg.norm(mesh.vertices - center, axis=-1).max())
    cameras = orbit_camera_path(num_views, center, extent, resolution, elevation_deg=30.0)
    views = render_vertex_colors(mesh, linear_colors, cameras, figure_path.parent / "geometry_error_scene")
    figure = linear_to_srgb(np.concatenate(views, axis=1))
    figure_path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(figure_path, np.round(figure * 255.0).astype(np.uint8))
    return error


@dataclass
class SceneEvaluation:
    """Run every evaluation that applies to a run's outputs on a nero-synth scene."""

    scene: Path
    """Scene folder written by nero-synth (holds gt/)."""
    output_dir: Path
    """Where metrics.json, figures/ (and relit renders, when made here) go."""
    mesh: Optional[Path] = None
    """Reconstructed mesh (default: ASSETS/mesh.ply when --assets is given)."""
    assets: Optional[Path] = None
    """nero-material export folder (mesh.ply + albedo.npy, roughness.npy, metallic.npy)."""
    relit: Optional[Path] = None
    """nero-relight output rendered from gt/relight/transforms.json under gt/env_relight.exr."""
    test_renders: Optional[Path] = None
    """Renders of the gt/test cameras (file names as in gt/test/images)."""
    relight_spp: int = 64
    """Samples per pixel when relighting --assets here."""
    relight_ceiling: bool = True
    """With --assets: also relight the true mesh and materials of gt/ the same way and score them
    (`relight_ceiling` in metrics.json), the best score relighting reaches on this scene."""
    max_distance: Optional[float] = None
    """Materials: score only vertices this close to the GT surface (fraction of the GT radius)."""

    def main(self) -> Dict[str, Dict]:
        """Evaluate, print each table, write OUTPUT_DIR/metrics.json."""
        with friendly_errors():
            return self._run()

    def _run(self) -> Dict[str, Dict]:
        gt_dir = self.scene / "gt"
        if not (gt_dir / "materials.json").is_file():
            raise NeroInputError(f"{self.scene}: no gt/materials.json; pass a scene folder written by nero-synth")
        if self.mesh is None and self.assets is None and self.relit is None and self.test_renders is None:
            raise NeroInputError("nero-eval scene: pass at least one of --mesh, --assets, --relit, --test-renders")
        figures = self.output_dir / "figures"
        results: Dict[str, Dict] = {}
        mesh_path = self.mesh if self.mesh is not None else (self.assets / "mesh.ply" if self.assets else None)
        if mesh_path is not None:
            mesh, gt_mesh = load_mesh(mesh_path), load_mesh(gt_dir / "mesh.ply")
            results["geometry"] = asdict(geometry_metrics(mesh, gt_mesh))
            geometry_error_figure(mesh, gt_mesh, figures / "geometry_error.png")
            print_metric_table(f"geometry {mesh_path}", results["geometry"])
        if self.assets is not None:
            assets = load_exported_assets(self.assets)
            results["materials"] = material_metrics(assets, load_gt_materials(gt_dir), self.max_distance)
            print_metric_table(f"materials {self.assets}", results["materials"])
        relit = self.relit
        if relit is None and self.assets is not None:
            relit = self._relit(assets, self.output_dir / "relight")
        if relit is not None:
            results["relight"] = evaluate_relighting(relit, gt_dir / "relight", figures_dir=figures / "relight")
            print_table(f"relit {relit} (scale-aligned)", results["relight"])
        if self.assets is not None and self.relight_ceiling:
            ceiling = self._relit(load_gt_assets(gt_dir), self.output_dir / "relight-ceiling")
            results["relight_ceiling"] = evaluate_relighting(ceiling, gt_dir / "relight")
            print_table(f"relit ground truth {ceiling} (scale-aligned): the ceiling", results["relight_ceiling"])
        if self.test_renders is not None:
            results["images"] = evaluate_images(self.test_renders, gt_dir / "test")
            print_table(f"test views {self.test_renders}", results["images"])
        write_json(self.output_dir / "metrics.json", {"scene": str(self.scene), **results})
        return results

    def _relit(self, assets: MaterialAssets, output: Path) -> Path:
        """`assets` relit under gt/env_relight.exr from the gt/relight cameras into `output`."""
        gt_dir = self.scene / "gt"
        cameras = read_transforms_cameras(gt_dir / "relight" / "transforms.json")
        relight(assets, gt_dir / "env_relight.exr", cameras, output, spp=self.relight_spp)
        return output
