"""`nero-relight`: render a reconstructed (or ground-truth) object under any environment map with Mitsuba 3."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Literal, Optional

import numpy as np
import tyro

from nero_ns.errors import NeroInputError, friendly_errors
from nero_ns.relight.assets import MaterialAssets, load_exported_assets
from nero_ns.relight.cameras import RelightCamera, orbit_camera_path, read_transforms_cameras
from nero_ns.relight.relight import RelightResult, relight


@dataclass
class RelightConfig:
    """Relight a nero-material result (or any mesh + per-vertex materials) under an environment map."""

    envmap: Path
    """Lat-long environment map (.exr/.hdr linear, .png/.jpg sRGB), world z up as in nero_ns.io.latlong."""
    output_dir: Path
    """Folder for images/, transforms.json, scene/ (Mitsuba XML), blender/ and orbit.mp4."""
    assets: Optional[Path] = None
    """Folder of exported materials: mesh.ply + albedo.npy, roughness.npy, metallic.npy (+ optional model.glb)."""
    load_config: Optional[Path] = None
    """config.yml of a nero-material run; `ns-export nero-materials` writes its assets to OUTPUT_DIR/assets first."""
    cameras: Optional[Path] = None
    """nerfstudio transforms.json (or its folder) whose cameras to render, e.g. gt/relight/transforms.json."""
    orbit: Optional[int] = None
    """Render this many turntable frames around the object instead (and an mp4 when ffmpeg is available)."""
    resolution: Optional[int] = None
    """Image width in pixels (height follows each camera's aspect); default: the cameras' own, 512 for --orbit."""
    spp: int = 64
    """Samples per pixel."""
    seed: int = 0
    """Render seed of the first view (view i uses seed + i)."""
    rotation_deg: float = 0.0
    """Rotate the environment by this many degrees about the up axis (+z, counter-clockwise seen from above)."""
    strength: float = 1.0
    """Multiply the environment's radiance by this."""
    transparent: bool = False
    """Transparent background (RGBA, alpha = object coverage) instead of the environment."""
    orbit_elevation_deg: float = 20.0
    """Elevation of the orbit cameras above the object center."""
    orbit_fov_deg: float = 40.0
    """Horizontal field of view of the orbit cameras."""
    variant: Literal["auto", "cuda_ad_rgb", "llvm_ad_rgb", "scalar_rgb"] = "auto"
    """Mitsuba variant; auto: cuda_ad_rgb with a GPU, else llvm_ad_rgb when it renders here, else scalar_rgb."""

    def validate(self) -> None:
        """Raise NeroInputError naming the options to fix."""
        if (self.assets is None) == (self.load_config is None):
            raise NeroInputError("nero-relight: pass exactly one of --assets DIR and --load-config CONFIG")
        if (self.cameras is None) == (self.orbit is None):
            raise NeroInputError("nero-relight: pass exactly one of --cameras transforms.json and --orbit N")
        checks = [
            (self.orbit is None or self.orbit >= 1, f"--orbit {self.orbit} must be at least 1"),
            (self.resolution is None or self.resolution >= 8, "--resolution must be at least 8"),
            (self.spp >= 1, "--spp must be at least 1"),
            (self.strength > 0.0, "--strength must be positive"),
            (0.0 < self.orbit_fov_deg < 150.0, "--orbit-fov-deg must lie in (0, 150)"),
            (abs(self.orbit_elevation_deg) < 90.0, "--orbit-elevation-deg must lie in (-90, 90)"),
        ]
        for passed, message in checks:
            if not passed:
                raise NeroInputError(f"nero-relight: {message}")
        if not Path(self.envmap).is_file():
            raise NeroInputError(f"{self.envmap}: environment map not found; pass an existing file as --envmap")
        if self.output_dir.is_file():
            raise NeroInputError(f"{self.output_dir} is a file; pass a folder as --output-dir")

    def load_assets(self) -> MaterialAssets:
        """The exported materials: from --assets, or exported from the --load-config run into OUTPUT_DIR/assets."""
        if self.assets is not None:
            return load_exported_assets(self.assets)
        from nero_ns.exporters.nero_materials import ExportNeroMaterials  # loads nerfstudio's model stack

        assets_dir = self.output_dir / "assets"
        ExportNeroMaterials(load_config=self.load_config, output_dir=assets_dir).main()
        return load_exported_assets(assets_dir)

    def camera_list(self, assets: MaterialAssets) -> List[RelightCamera]:
        """The cameras to render, at --resolution when given."""
        if self.orbit is not None:
            vertices = assets.mesh.vertices
            center = 0.5 * (vertices.min(0) + vertices.max(0))
            radius = float(np.linalg.norm(vertices - center, axis=-1).max())
            resolution = self.resolution or 512
            return orbit_camera_path(
                self.orbit, center, radius, resolution, self.orbit_fov_deg, self.orbit_elevation_deg
            )
        cameras = read_transforms_cameras(self.cameras)
        return cameras if self.resolution is None else [camera.resized(self.resolution) for camera in cameras]

    def main(self) -> RelightResult:
        """Check the options, load the assets and cameras, render."""
        self.validate()
        assets = self.load_assets()
        cameras = self.camera_list(assets)
        seeds = [self.seed + index for index in range(len(cameras))]
        return relight(
            assets, self.envmap, cameras, self.output_dir, self.spp, seeds, self.rotation_deg, self.strength,
            self.transparent, self.variant, video=self.orbit is not None,
        )


def entrypoint() -> None:
    """Console script `nero-relight`."""
    config = tyro.cli(RelightConfig)
    with friendly_errors():
        config.main()


if __name__ == "__main__":
    entrypoint()
