"""Options of the synthetic glossy scene generator (the `nero-synth` command line)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Tuple

from nero_ns.errors import NeroInputError
from nero_ns.synthetic.shapes import ShapeName


@dataclass
class SyntheticSceneConfig:
    """A shiny object under a procedural HDR environment, rendered with Mitsuba 3 into a nerfstudio dataset."""

    output_dir: Path = Path("data/nero-synth")
    """Dataset folder to write (transforms.json, images/, masks/, sparse_pc.ply, gt/)."""
    shape: ShapeName = "knot"
    """Object: sphere, knot (tube along a (2,3) torus knot) or blob (lumpy, with two concave dimples)."""
    base_color: Tuple[float, float, float] = (0.95, 0.7, 0.4)
    """Principled BSDF base color (linear RGB in [0, 1])."""
    metallic: float = 1.0
    """Principled BSDF metallic in [0, 1]."""
    roughness: float = 0.15
    """Principled BSDF roughness in [0, 1]."""
    object_center: Tuple[float, float, float] = (0.4, -0.3, 0.2)
    """Object center in the world (input) frame, z up."""
    object_radius: float = 1.6
    """Object bounding radius in the world frame."""
    resolution: int = 128
    """Width and height of every image, in pixels."""
    num_train_views: int = 48
    """Training views written to transforms.json."""
    num_test_views: int = 8
    """Held-out views written to gt/test and re-rendered under the relighting environment in gt/relight."""
    spp: int = 64
    """Samples per pixel of the path tracer."""
    fov_x_deg: float = 40.0
    """Horizontal field of view of every camera."""
    fill_fraction: float = 0.6
    """Fraction of the image width spanned by the object's bounding sphere."""
    elevation_range_deg: Tuple[float, float] = (15.0, 70.0)
    """Band of camera elevations above the object center (degrees)."""
    envmap_height: int = 256
    """Height of the lat-long environment maps (width is twice that)."""
    distractors: bool = True
    """Add a few diffuse objects outside the object's bounding sphere."""
    floor: bool = True
    """Add a diffuse checkered floor below the object, extending well outside its bounding sphere."""
    floor_pattern: Literal["textured", "checker"] = "textured"
    """textured: checker modulated by noise and speckles (distinct features for COLMAP); checker: a plain regular
    checkerboard, whose repeating corners are the hard case for feature matching."""
    masks: bool = True
    """Write training masks (255 where the object is visible); gt/test and gt/relight always have masks."""
    points: bool = True
    """Write sparse_pc.ply: noisy points on the object surface plus ~10% outliers, like COLMAP's."""
    num_points: int = 4000
    """Points sampled on the object surface for sparse_pc.ply (outliers come on top)."""
    seed: int = 0
    """Seed of everything random: environment maps, cameras, distractors, points, render noise."""
    variant: Literal["auto", "llvm_ad_rgb", "scalar_rgb"] = "auto"
    """Mitsuba variant; auto uses llvm_ad_rgb when it renders on this machine, otherwise scalar_rgb."""
    overwrite: bool = False
    """Allow writing into a non-empty output folder."""

    def validate(self) -> None:
        """Raise NeroInputError naming the option and the fix for values the generator cannot honor."""
        checks = [
            (self.resolution >= 8, f"--resolution {self.resolution} is too small; use at least 8"),
            (self.num_train_views >= 1, "--num-train-views must be at least 1"),
            (self.num_test_views >= 1, "--num-test-views must be at least 1"),
            (self.spp >= 1, "--spp must be at least 1"),
            (self.object_radius > 0, "--object-radius must be positive"),
            (0.0 <= self.metallic <= 1.0, "--metallic must lie in [0, 1]"),
            (0.0 <= self.roughness <= 1.0, "--roughness must lie in [0, 1]"),
            (all(0.0 <= c <= 1.0 for c in self.base_color), "--base-color channels must lie in [0, 1]"),
            (0.0 < self.fov_x_deg < 150.0, "--fov-x-deg must lie in (0, 150)"),
            (0.0 < self.fill_fraction < 1.0, "--fill-fraction must lie in (0, 1)"),
            (
                -80.0 <= self.elevation_range_deg[0] < self.elevation_range_deg[1] <= 80.0,
                "--elevation-range-deg must be increasing and within [-80, 80]",
            ),
            (
                not (self.floor or self.distractors) or self.elevation_range_deg[0] >= 15.0,
                "cameras below 15 degrees would look under the floor or through distractors; "
                "raise --elevation-range-deg or pass --no-floor --no-distractors",
            ),
            (self.envmap_height >= 16, "--envmap-height must be at least 16"),
            (self.num_points >= 1, "--num-points must be at least 1"),
        ]
        for passed, message in checks:
            if not passed:
                raise NeroInputError(f"nero-synth: {message}")
        output_dir = Path(self.output_dir)
        if output_dir.is_file():
            raise NeroInputError(f"{output_dir} is a file; pass a folder as --output-dir")
        if output_dir.is_dir() and any(output_dir.iterdir()) and not self.overwrite:
            raise NeroInputError(f"{output_dir} is not empty; choose another --output-dir or pass --overwrite")
