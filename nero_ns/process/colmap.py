"""COLMAP runs that work on a headless CPU machine without network and hold up on shiny objects.

nerfstudio's `colmap_utils.run_colmap` asks for GPU SIFT (COLMAP then opens a Qt display and aborts on a headless
machine), its default matcher downloads a vocabulary tree, and COLMAP's default thresholds build no model from the
few features a mirror-like object leaves. Here every run gets `QT_QPA_PLATFORM=offscreen`, SIFT runs on the CPU
unless COLMAP was built with CUDA and a CUDA device is visible, matching is exhaustive or sequential (nothing to
download), and registration tries the strategies of `STRATEGIES` in turn until enough images register. Option names
are resolved against the installed COLMAP's `--help`, since they moved between releases (SiftExtraction.use_gpu
became FeatureExtraction.use_gpu in 3.12, for example).
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Union

import torch
from nerfstudio.data.utils.colmap_parsing_utils import read_images_binary
from nerfstudio.utils.rich_utils import CONSOLE

OptionValue = Union[int, float, str]

SECTIONS: Dict[str, Tuple[str, ...]] = {
    "reader": ("ImageReader",),
    "extraction": ("SiftExtraction", "FeatureExtraction"),
    "matching": ("SiftMatching", "FeatureMatching"),
    "sequential": ("SequentialMatching",),
    "mapper": ("Mapper",),
    "adjustment": ("BundleAdjustment",),
}
"""Option section -> the prefixes COLMAP releases have used for it; the first one the installed COLMAP accepts wins
(an option moved to FeatureExtraction/FeatureMatching in 3.12 stays under SiftExtraction in 3.8)."""

MAX_NUM_FEATURES = 16384
"""nero-process's default --max-num-features (its --help says why)."""
MAX_IMAGE_SIZE = 4096
"""nero-process's default --max-image-size."""

CPU_ONLY_EXTRACTION = ("estimate_affine_shape", "domain_size_pooling")
"""SIFT options that only COLMAP's CPU extractor has (the GPU one falls back to the CPU, slowly, when asked)."""


@dataclass(frozen=True)
class Strategy:
    """One registration attempt: COLMAP options per stage, by name within their section."""

    name: str
    extraction: Dict[str, OptionValue] = field(default_factory=dict)
    matching: Dict[str, OptionValue] = field(default_factory=dict)
    mapper: Dict[str, OptionValue] = field(default_factory=dict)


RELAXED_MAPPER: Dict[str, OptionValue] = {
    "init_min_num_inliers": 50,
    "abs_pose_min_num_inliers": 15,
    "abs_pose_min_inlier_ratio": 0.15,
}
"""A shiny object leaves few matches per pair: start from a pair with 50 inliers (COLMAP's default 100) and add views
with 15 (default 30)."""

STRATEGIES: Tuple[Strategy, ...] = (
    # Plain SIFT with more features (max_num_features) and COLMAP's own thresholds: on a partly repeating floor it
    # registered every view where affine-adapted SIFT registered 12 of 40 (docs/data.md).
    Strategy(name="sift"),
    # Guided matching recovers matches the ratio test dropped; the mapper accepts pairs and views with fewer.
    Strategy(name="guided", matching={"guided_matching": 1}, mapper=RELAXED_MAPPER),
    # Affine-adapted, domain-size-pooled SIFT (CPU only), weaker features, a looser ratio test and lower
    # thresholds everywhere: more images at the price of less certain poses.
    Strategy(
        name="relaxed",
        extraction={"estimate_affine_shape": 1, "domain_size_pooling": 1, "peak_threshold": 0.004},
        matching={"guided_matching": 1, "max_ratio": 0.9, "min_num_inliers": 10},
        mapper={
            "min_num_matches": 10,
            "init_min_num_inliers": 15,
            "init_min_tri_angle": 4,
            "abs_pose_min_num_inliers": 10,
            "abs_pose_min_inlier_ratio": 0.1,
        },
    ),
)
"""Tried in order; the next runs only while fewer than `retry_below` of the images have registered."""


@dataclass(frozen=True)
class Registration:
    """The largest model one strategy built."""

    strategy: str
    model_dir: Optional[Path]
    """COLMAP's sparse model folder (cameras.bin, images.bin, points3D.bin); None when the mapper built none."""
    num_registered: int
    num_images: int

    @property
    def fraction(self) -> float:
        return self.num_registered / max(self.num_images, 1)

    def summary(self) -> str:
        return f"{self.num_registered} of {self.num_images} images registered"


def _offscreen(colmap_cmd: str) -> str:
    """The COLMAP call with Qt kept off any display (COLMAP's GUI-less commands still create a Qt application)."""
    return f"QT_QPA_PLATFORM=offscreen {colmap_cmd}"


@functools.lru_cache(maxsize=None)
def _colmap_help(colmap_cmd: str, command: str = "") -> str:
    result = subprocess.run(
        f"{_offscreen(colmap_cmd)} {command} -h", shell=True, capture_output=True, text=True, check=False
    )
    return result.stdout + result.stderr


def colmap_has_cuda(colmap_cmd: str = "colmap") -> bool:
    """Whether the installed COLMAP was built with CUDA (its banner says 'with CUDA' or 'without CUDA')."""
    return re.search(r"\bwith CUDA\b", _colmap_help(colmap_cmd)) is not None


def use_gpu_sift(colmap_cmd: str = "colmap") -> bool:
    """GPU SIFT only where it needs no display: a CUDA build of COLMAP and a visible CUDA device. (A build without
    CUDA runs SiftGPU on OpenGL, which needs a display.)"""
    return colmap_has_cuda(colmap_cmd) and torch.cuda.is_available()


def _resolve(colmap_cmd: str, command: str, section: str, options: Dict[str, OptionValue]) -> List[str]:
    """`--Prefix.name value` arguments for the options this COLMAP's `command` accepts; the rest are skipped (said
    on the console), so a release that dropped an option still runs."""
    accepted = set(re.findall(r"--([A-Za-z]+\.[A-Za-z_]+)", _colmap_help(colmap_cmd, command)))
    arguments = []
    for name, value in options.items():
        spelled = [f"{prefix}.{name}" for prefix in SECTIONS[section] if f"{prefix}.{name}" in accepted]
        if not spelled:
            CONSOLE.log(f"[yellow]{colmap_cmd} {command} has no option {SECTIONS[section][0]}.{name}; skipped")
            continue
        arguments.append(f"--{spelled[0]} {shlex.quote(str(value))}")
    return arguments


def _run(
    colmap_cmd: str,
    command: str,
    paths: Dict[str, Path],
    options: Dict[str, Dict[str, OptionValue]],
    verbose: bool,
    may_fail: bool = False,
) -> None:
    """Run one COLMAP command. A failure raises with COLMAP's last lines, except where `may_fail` (the mapper exits
    with an error when it builds no model; the caller counts what it built), where they are only shown."""
    arguments = [f"--{name} {shlex.quote(str(path))}" for name, path in paths.items()]
    for section, section_options in options.items():
        arguments += _resolve(colmap_cmd, command, section, section_options)
    line = " ".join([_offscreen(colmap_cmd), command, *arguments])
    if verbose:
        CONSOLE.log(line)
    with CONSOLE.status(f"[bold yellow]COLMAP {command}...", spinner="circle"):
        result = subprocess.run(line, shell=True, capture_output=not verbose, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or "").strip().splitlines()[-3:])
        if not may_fail:
            raise RuntimeError(f"COLMAP failed ({line}): {tail}")
        CONSOLE.log(f"[yellow]COLMAP {command} exited with {result.returncode}: {tail}")


def _largest_model(sparse_dir: Path) -> Tuple[Optional[Path], int]:
    """The mapper's model (sparse_dir/0, /1, ...) with the most registered images, and that number."""
    best: Tuple[Optional[Path], int] = (None, 0)
    for model_dir in sorted(path for path in sparse_dir.iterdir() if (path / "images.bin").exists()):
        count = len(read_images_binary(model_dir / "images.bin"))
        if count > best[1]:
            best = (model_dir, count)
    return best


@dataclass
class ColmapSettings:
    """What the caller chose: the images, the camera model and the search effort."""

    image_dir: Path
    camera_model: str
    """COLMAP's name of the camera model (OPENCV, SIMPLE_RADIAL, ...)."""
    matching_method: Literal["exhaustive", "sequential"]
    gpu: bool
    max_num_features: int
    max_image_size: int
    camera_mask_path: Optional[Path] = None
    colmap_cmd: str = "colmap"
    verbose: bool = False


def register(settings: ColmapSettings, work_dir: Path, strategy: Strategy, num_images: int) -> Registration:
    """Features, matches and the mapper for one strategy, in `work_dir` (database.db, sparse/)."""
    if work_dir.exists():
        shutil.rmtree(work_dir)
    sparse_dir = work_dir / "sparse"
    sparse_dir.mkdir(parents=True)
    database = work_dir / "database.db"
    cmd, verbose = settings.colmap_cmd, settings.verbose

    reader: Dict[str, OptionValue] = {"single_camera": 1, "camera_model": settings.camera_model}
    if settings.camera_mask_path is not None:
        reader["camera_mask_path"] = str(settings.camera_mask_path)
    extraction: Dict[str, OptionValue] = {
        "use_gpu": int(settings.gpu),
        "max_num_features": settings.max_num_features,
        "max_image_size": settings.max_image_size,
        **strategy.extraction,
    }
    if settings.gpu:
        extraction = {name: value for name, value in extraction.items() if name not in CPU_ONLY_EXTRACTION}
    _run(
        cmd,
        "feature_extractor",
        {"database_path": database, "image_path": settings.image_dir},
        {"reader": reader, "extraction": extraction},
        verbose,
    )
    matching: Dict[str, OptionValue] = {"use_gpu": int(settings.gpu), **strategy.matching}
    _run(cmd, f"{settings.matching_method}_matcher", {"database_path": database}, {"matching": matching}, verbose)
    # The bundle adjuster's tolerance as in nerfstudio's own run_colmap (faster, same poses).
    mapper = {"ba_global_function_tolerance": 1e-6, **strategy.mapper}
    _run(
        cmd,
        "mapper",
        {"database_path": database, "image_path": settings.image_dir, "output_path": sparse_dir},
        {"mapper": mapper},
        verbose,
        may_fail=True,
    )
    model_dir, num_registered = _largest_model(sparse_dir)
    return Registration(strategy.name, model_dir, num_registered, num_images)


def register_with_retries(
    settings: ColmapSettings, colmap_dir: Path, num_images: int, retry_below: float
) -> Registration:
    """Try `STRATEGIES` in order (each in colmap_dir/<name>/) until one registers `retry_below` of the images; the
    best model of those tried. Prints 'N of M images registered' for each."""
    best: Optional[Registration] = None
    for strategy in STRATEGIES:
        registration = register(settings, colmap_dir / strategy.name, strategy, num_images)
        CONSOLE.log(f"COLMAP, strategy {strategy.name}: {registration.summary()}")
        if best is None or registration.num_registered > best.num_registered:
            best = registration
        if best.fraction >= retry_below:
            break
    assert best is not None
    return best


def refine_intrinsics(model_dir: Path, colmap_cmd: str, verbose: bool) -> None:
    """Bundle adjustment with the principal point free, as nerfstudio's run_colmap does after the mapper."""
    paths = {"input_path": model_dir, "output_path": model_dir}
    _run(colmap_cmd, "bundle_adjuster", paths, {"adjustment": {"refine_principal_point": 1}}, verbose)
