"""Relighting of reconstructed objects with Mitsuba 3 (`nero-relight`): a mesh with per-vertex (or constant)
principled-BSDF materials under any lat-long environment in `nero_ns.io.latlong`'s convention, from
nerfstudio cameras or an orbit; also writes the Mitsuba scene XML and a Blender bundle."""

from nero_ns.relight.assets import MaterialAssets, load_exported_assets, load_gt_assets
from nero_ns.relight.cameras import RelightCamera, orbit_camera_path, read_transforms_cameras
from nero_ns.relight.relight import RelightResult, relight

__all__ = [
    "MaterialAssets",
    "RelightCamera",
    "RelightResult",
    "load_exported_assets",
    "load_gt_assets",
    "orbit_camera_path",
    "read_transforms_cameras",
    "relight",
]
