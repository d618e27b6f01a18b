"""nero-shape on CUDA: parity of the SDF gradient modes, then the knot's time-to-quality curve, steps/s and peak memory.

    python benchmarks/gpu_check.py --scene SCENE --output-dir OUT --runs-dir /tmp/runs      # on a CUDA machine
    python benchmarks/gpu_check.py --scene SCENE --output-dir OUT --smoke --device cpu     # a minute-long dry run

SCENE is a generated scene (`nero-synth`, or the metal knot of curve_benchmark.py): transforms.json, images/,
sparse_pc.ply and gt/mesh.ply. Everything runs in this one process, through nero-ns's own code:

1. Gradient parity: a rough `NeroSDFField` (hash table and MLP perturbed, every level unlocked, as after training)
   gives its SDF gradient with gradient_mode "analytic" and "autograd" at `--parity-points` points; prints the
   largest differences of the SDF, the gradient and the parameters' gradients after the backward pass of an
   eikonal + SDF + feature loss, and the median time (and peak memory) of forward + backward in each mode.
2. Training: `nero-shape` (its defaults, no masks, no evaluation) trains through NeroTrainer for `--budget-seconds`
   with a checkpoint kept at each `--marks` second, with `--rays` rays per step; then a second run with
   `--second-rays` rays per step, for the longest budget among `--second-budgets` that still fits before
   `--deadline-seconds` (the slowest parts of the first run tell how long it takes). Each kept checkpoint is loaded
   into the model and meshed as `ns-export nero-mesh` does (marching cubes at `--mesh-resolution`, cleaning, the
   input frame; nerfstudio's `eval_setup` needs nero-ns installed as a plugin, so the checkpoint is loaded here
   directly) and scored against gt/mesh.ply with `nero_ns.evaluation.geometry` (Chamfer, normal error, F@0.01).

Prints a table per run (mark, steps, steps/s, Chamfer, normal error, F-score) with the run's peak CUDA memory, and
writes OUT/<date>-<commit>.json (rewritten after every phase, so a run cut short keeps what it finished) and, for
the last mark of each run, the raw marching-cubes mesh (OUT/mesh-<run>.npz: normalized-frame vertices and faces
with the dataparser transform and scale), so it can be cleaned and scored again elsewhere.

Machines without pymeshlab, open3d or mitsuba (a GPU machine with only PyTorch's stack and carried wheels): the
modules that import them at module level are loaded against empty stand-in modules, which this check never calls
(open3d: the support-plane fit and nero-material's ray casting, both off here; mitsuba: scene generation and HDR input,
the scene being PNG). pymeshlab cleans exported meshes; without it `clean_mesh` is replaced by a trimesh version of
the same steps (duplicate and degenerate faces out, largest connected component kept, unreferenced vertices out;
not the non-manifold-edge repair), and the JSON says which one ran.
"""

from __future__ import annotations

import copy
import datetime
import gc
import importlib.util
import json
import shlex
import statistics
import subprocess
import sys
import time
import types
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Literal, Optional, Tuple, Union

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout where nero-ns is not installed
    sys.path.insert(0, str(ROOT))

STANDIN_MODULES = ("open3d", "mitsuba", "pymeshlab")
"""Imported at module level on the way to nero-shape and its mesh export, never called by this check."""
MISSING_MODULES = [name for name in STANDIN_MODULES if importlib.util.find_spec(name) is None]
for _name in MISSING_MODULES:
    sys.modules[_name] = types.ModuleType(_name)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import trimesh  # noqa: E402
import tyro  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from nero_ns.engine.trainer import TIME_CHECKPOINTS_FILE  # noqa: E402
from nero_ns.evaluation.geometry import geometry_metrics  # noqa: E402
from nero_ns.exporters import mesh_export  # noqa: E402
from nero_ns.exporters.mesh_export import MeshExportOptions, export_mesh  # noqa: E402
from nero_ns.io.meshes import load_mesh  # noqa: E402
from nero_ns.fields.sdf_field import NeroSDFField, NeroSDFFieldConfig  # noqa: E402
from nero_ns.method_configs import nero_shape  # noqa: E402

console = Console(width=160)
NEVER = 1_000_000
"""A step interval no run reaches (evaluation and intermediate checkpoints off, as in the curve benchmark)."""


@dataclass
class GpuCheck:
    scene: Path = Path("benchmark-output/curve/metal-knot/scene")
    """Generated scene: transforms.json, images/, sparse_pc.ply, gt/mesh.ply."""
    output_dir: Path = Path("benchmark-output/gpu_check")
    """Where the results JSON and the meshes go."""
    runs_dir: Optional[Path] = None
    """Where the training runs (checkpoints, tensorboard events) go; None: OUTPUT_DIR/runs."""
    device: str = "cuda"
    """Device to check on (cpu only for a dry run of this script)."""
    parity_points: int = 131_072
    """Points of the gradient-parity check (512 rays x 256 samples)."""
    parity_rounds: int = 10
    """Timed forward + backward rounds per gradient mode (after 3 warm-ups), interleaved."""
    budget_seconds: float = 240.0
    """Training budget of the first run."""
    marks: Tuple[float, ...] = (30.0, 60.0, 120.0, 240.0)
    """Training seconds at which checkpoints are kept and scored."""
    rays: int = 512
    """Rays per step of the first run (nero-shape's default)."""
    second_rays: Optional[int] = 4096
    """Rays per step of the second run (None: no second run)."""
    second_budgets: Tuple[float, ...] = (240.0, 180.0, 120.0, 90.0, 60.0)
    """Budgets tried for the second run, longest first; its marks are the first run's below it, and the budget."""
    deadline_seconds: float = 510.0
    """Wall-clock seconds from this script's start by which everything must be done (the second run shrinks or is
    skipped to fit)."""
    mesh_resolution: int = 256
    """Marching-cubes resolution of the exported meshes."""
    num_points: int = 100_000
    """Points sampled on each surface for the geometry metrics."""
    commit: Optional[str] = None
    """Commit to name the results by (None: this checkout's, or "unknown" without git)."""
    smoke: bool = False
    """Dry-run preset: 4096 parity points, 8 s and 5 s runs with marks at 3 and 6 s, 64 rays, meshes at 48."""

    def apply_smoke_preset(self) -> None:
        if self.smoke:
            self.parity_points, self.parity_rounds = 4096, 2
            self.budget_seconds, self.marks, self.rays = 8.0, (3.0, 6.0, 8.0), 64
            self.second_rays, self.second_budgets = 128, (5.0,)
            self.mesh_resolution, self.num_points = 48, 5000


# ---------------------------------------------------------------------------------------------- helpers
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device) -> Optional[float]:
    """Peak CUDA memory allocated by tensors since the last reset (None on the CPU)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def git_state(commit: Optional[str]) -> Tuple[str, Optional[bool]]:
    """The commit to name results by and whether tracked files differ from it (None when git cannot tell)."""
    def git(*arguments: str) -> Optional[str]:
        try:
            completed = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)
        except OSError:
            return None
        return completed.stdout.strip() if completed.returncode == 0 else None

    found = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if found else None
    return commit or found or "unknown", None if status is None else bool(status)


def clean_mesh_with_trimesh(
    vertices: np.ndarray, faces: np.ndarray, keep_components: Union[Literal["largest", "all"], float],
    target_faces: Optional[int],
) -> Tuple[np.ndarray, np.ndarray]:
    """`mesh_export.clean_mesh` without pymeshlab: duplicate vertices merged, duplicate and degenerate faces out,
    the components `keep_components` asks for kept (by faces sharing an edge), unreferenced vertices out. It does
    not repair non-manifold edges nor decimate."""
    if target_faces is not None:
        raise NotImplementedError("decimation needs pymeshlab")
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    mesh.merge_vertices()
    mesh.update_faces(mesh.unique_faces() & mesh.nondegenerate_faces())
    if keep_components != "all" and len(mesh.faces) > 0:
        components = trimesh.graph.connected_components(
            mesh.face_adjacency, min_len=1, nodes=np.arange(len(mesh.faces))
        )
        sizes = np.array([len(component) for component in components])
        ratio = 1.0 if keep_components == "largest" else float(keep_components)
        kept = [component for component, size in zip(components, sizes) if size >= ratio * sizes.max()]
        mask = np.zeros(len(mesh.faces), dtype=bool)
        mask[np.concatenate(kept)] = True
        mesh.update_faces(mask)
    mesh.remove_unreferenced_vertices()
    return np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64)


class RecordingCleaner:
    """Stands in for `mesh_export.clean_mesh`: keeps its last input (the raw marching-cubes mesh), then cleans with
    pymeshlab when it is installed, else with `clean_mesh_with_trimesh`."""

    def __init__(self, clean: Callable) -> None:
        self.clean = clean
        self.raw: Optional[Tuple[np.ndarray, np.ndarray]] = None

    def __call__(self, vertices, faces, keep_components, target_faces):
        self.raw = (vertices, faces)
        return self.clean(vertices, faces, keep_components, target_faces)


# ---------------------------------------------------------------------------------------------- 1. gradient parity
def rough_sdf_field(device: torch.device) -> NeroSDFField:
    """An SDF field as after training: rough hash table and MLP, every level unlocked (as in
    tests/fields/test_sdf_field.py)."""
    torch.manual_seed(0)
    field = NeroSDFFieldConfig(hash_implementation="torch").setup()
    with torch.no_grad():
        field.encoding.encoding.hash_table.normal_(0.0, 0.1)
        for layer in field.layers:
            layer.weight.add_(torch.randn_like(layer.weight) * 0.05)
    field.set_step(100_000)
    return field.to(device)


def gradient_parity(config: GpuCheck, device: torch.device) -> Dict:
    """Largest differences between the analytic and autograd SDF gradients (and what they train), and the time and
    peak memory of a training forward + backward in each mode."""
    field = rough_sdf_field(device)
    generator = torch.Generator().manual_seed(1)
    points = (torch.rand(config.parity_points, 3, generator=generator) * 1.6 - 0.8).to(device)

    def step(mode: str) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        field.config.gradient_mode = mode
        field.zero_grad(set_to_none=True)
        sdf, feature, gradient = field.sdf_feature_gradient(points, create_graph=True)
        loss = ((gradient.norm(dim=-1) - 1.0) ** 2).mean() + sdf.abs().mean() + feature.square().mean()
        loss.backward()
        grads = {name: parameter.grad for name, parameter in field.named_parameters() if parameter.grad is not None}
        return sdf.detach(), gradient.detach(), grads

    modes = ("analytic", "autograd")
    results = {mode: step(mode) for mode in modes}
    (sdf_a, gradient_a, grads_a), (sdf_b, gradient_b, grads_b) = results["analytic"], results["autograd"]
    table = "encoding.encoding.hash_table"
    parameter_differences = {name: float((grads_a[name] - grads_b[name]).abs().max()) for name in grads_b}
    parity = {
        "points": config.parity_points,
        "gradient_norm_mean": float(gradient_b.norm(dim=-1).mean()),
        "max_abs_diff_sdf": float((sdf_a - sdf_b).abs().max()),
        "max_abs_diff_gradient": float((gradient_a - gradient_b).abs().max()),
        "max_abs_gradient": float(gradient_b.abs().max()),
        "max_abs_diff_hash_table_grad": parameter_differences[table],
        "max_abs_hash_table_grad": float(grads_b[table].abs().max()),
        "max_abs_diff_any_parameter_grad": max(parameter_differences.values()),
        "parameter_missing_grad": sorted(set(grads_b) ^ set(grads_a)),
    }
    del results, sdf_a, sdf_b, gradient_a, gradient_b, grads_a, grads_b

    times: Dict[str, List[float]] = {mode: [] for mode in modes}
    peaks: Dict[str, Optional[float]] = {}
    for mode in modes:  # warm-up (kernels, allocator), and each mode's peak memory on its own
        reset_peak_memory(device)
        for _ in range(3):
            step(mode)
        synchronize(device)
        peaks[mode] = peak_memory_mib(device)
    for _ in range(config.parity_rounds):
        for mode in modes:
            synchronize(device)
            started = time.perf_counter()
            step(mode)
            synchronize(device)
            times[mode].append(time.perf_counter() - started)
    for mode in modes:
        parity[f"{mode}_forward_backward_ms"] = 1000.0 * statistics.median(times[mode])
        parity[f"{mode}_peak_memory_mib"] = peaks[mode]
    parity["autograd_over_analytic"] = parity["autograd_forward_backward_ms"] / parity["analytic_forward_backward_ms"]
    field.zero_grad(set_to_none=True)
    return parity


def print_parity(parity: Dict) -> None:
    table = Table(title=f"SDF gradient, analytic vs autograd, {parity['points']} points")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in parity.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


# ---------------------------------------------------------------------------------------------- 2. training runs
def shape_config(config: GpuCheck, name: str, rays: int, budget: float, marks: Tuple[float, ...]):
    """nero-shape's defaults as `ns-train` gets them in the curve benchmark, with a budget and kept marks."""
    trainer_config = copy.deepcopy(nero_shape.config)
    scene = config.scene.resolve()
    trainer_config.data = scene
    trainer_config.pipeline.datamanager.data = scene
    trainer_config.pipeline.datamanager.dataparser.use_masks = False
    trainer_config.pipeline.datamanager.train_num_rays_per_batch = rays
    trainer_config.output_dir = (config.runs_dir or config.output_dir / "runs").resolve()
    trainer_config.experiment_name = "knot"
    trainer_config.timestamp = name
    trainer_config.vis = "tensorboard"
    trainer_config.machine.device_type = "cuda" if config.device.startswith("cuda") else config.device
    trainer_config.max_num_iterations = NEVER
    trainer_config.max_train_seconds = budget
    trainer_config.checkpoint_at_seconds = marks
    trainer_config.steps_per_eval_batch = NEVER
    trainer_config.steps_per_eval_image = NEVER
    trainer_config.steps_per_eval_all_images = NEVER
    trainer_config.steps_per_save = NEVER
    trainer_config.logging.steps_per_log = 10
    trainer_config.logging.local_writer.enable = False  # no progress table in the log
    return trainer_config


def train_and_score(
    config: GpuCheck, device: torch.device, name: str, rays: int, budget: float, marks: Tuple[float, ...],
    cleaner: RecordingCleaner, gt: trimesh.Trimesh,
) -> Dict:
    """Train one run, then mesh and score the checkpoint kept at each mark; the run's record."""
    console.print(f"[bold]{name}: nero-shape, {rays} rays per step, {budget:g} s, marks {marks}")
    trainer_config = shape_config(config, name, rays, budget, marks)
    torch.manual_seed(0)
    reset_peak_memory(device)
    started = time.perf_counter()
    trainer_config.save_config()
    trainer = trainer_config.setup(local_rank=0, world_size=1)
    trainer.setup()
    setup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    trainer.train()
    synchronize(device)
    train_wall_seconds = time.perf_counter() - started
    peak = peak_memory_mib(device)
    model = trainer.pipeline.model
    record = {
        "name": name, "rays_per_batch": rays, "budget_seconds": budget, "marks": list(marks),
        "gradient_mode": model.sdf_field.effective_gradient_mode,
        "hash_grid": type(model.sdf_field.encoding.encoding).__name__,
        "setup_seconds": setup_seconds, "train_wall_seconds": train_wall_seconds,
        "last_step": trainer.step, "peak_cuda_memory_mib": peak,
        "peak_cuda_reserved_mib": torch.cuda.max_memory_reserved(device) / 2**20 if device.type == "cuda" else None,
        "rows": [],
    }
    timed = json.loads((trainer.base_dir / TIME_CHECKPOINTS_FILE).read_text())
    outputs = trainer.pipeline.datamanager.train_dataparser_outputs
    state: Optional[Dict] = None
    for index, row in enumerate(timed):
        started = time.perf_counter()
        path = trainer.checkpoint_dir / f"step-{row['step']:09d}.ckpt"
        state = torch.load(path, map_location=device, weights_only=False)
        trainer.pipeline.load_pipeline(state["pipeline"], state["step"])  # what eval_setup does
        trainer.pipeline.eval()
        mesh = export_mesh(model, outputs, MeshExportOptions(resolution=config.mesh_resolution))
        export_seconds = time.perf_counter() - started
        metrics = geometry_metrics(mesh, gt, num_points=config.num_points)
        steps = row["step"] + 1
        record["rows"].append({
            "seconds": row["seconds"], "elapsed": row["elapsed"], "steps": steps,
            "steps_per_second": steps / row["elapsed"], "rays_per_second": steps * rays / row["elapsed"],
            "vertices": len(mesh.vertices), "faces": len(mesh.faces), "export_seconds": export_seconds,
            "score_seconds": time.perf_counter() - started - export_seconds, **asdict(metrics),
        })
        if index == len(timed) - 1 and cleaner.raw is not None:
            vertices, faces = cleaner.raw
            np.savez_compressed(
                config.output_dir / f"mesh-{name}.npz", vertices=vertices.astype(np.float32),
                faces=faces.astype(np.int32), dataparser_transform=outputs.dataparser_transform.cpu().numpy(),
                dataparser_scale=float(outputs.dataparser_scale), seconds=row["seconds"], steps=steps,
            )
    del trainer, model, state
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return record


def print_run(record: Dict) -> None:
    peak = record["peak_cuda_memory_mib"]
    table = Table(
        title=f"{record['name']}: nero-shape on the knot, {record['rays_per_batch']} rays per step",
        caption=f"gradient {record['gradient_mode']}, {record['hash_grid']}; setup {record['setup_seconds']:.1f} s; "
        + (f"peak CUDA memory {peak:.0f} MiB" if peak is not None else "CPU"),
    )
    for column in ("mark (s)", "elapsed (s)", "steps", "steps/s", "Chamfer", "normal err", "F@0.01", "mesh+score (s)"):
        table.add_column(column, justify="right")
    for row in record["rows"]:
        table.add_row(
            f"{row['seconds']:g}", f"{row['elapsed']:.1f}", str(row["steps"]), f"{row['steps_per_second']:.2f}",
            f"{row['chamfer']:.4f}", f"{row['normal_error_deg']:.1f}", f"{row['fscore']:.3f}",
            f"{row['export_seconds'] + row['score_seconds']:.1f}",
        )
    console.print(table)


def second_budget(config: GpuCheck, first: Dict, started: float) -> Optional[float]:
    """The longest of `second_budgets` that fits before the deadline, judged by the first run's setup and its
    slowest mark to mesh and score (None: none fits)."""
    per_mark = max((row["export_seconds"] + row["score_seconds"] for row in first["rows"]), default=30.0)
    overhead = first["setup_seconds"] + (first["train_wall_seconds"] - first["budget_seconds"]) + 10.0
    left = config.deadline_seconds - (time.perf_counter() - started)
    for budget in sorted(config.second_budgets, reverse=True):
        if budget + overhead + per_mark * len(second_marks(config, budget)) <= left:
            return budget
    return None


def second_marks(config: GpuCheck, budget: float) -> Tuple[float, ...]:
    return tuple(sorted({mark for mark in config.marks if mark < budget} | {budget}))


# ---------------------------------------------------------------------------------------------- main
def main(config: GpuCheck) -> None:
    started = time.perf_counter()
    config.apply_smoke_preset()
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; pass --device cpu for a dry run")
    config.output_dir.mkdir(parents=True, exist_ok=True)
    commit, dirty = git_state(config.commit)
    date = datetime.date.today().isoformat()
    cleaner = RecordingCleaner(clean_mesh_with_trimesh if "pymeshlab" in MISSING_MODULES else mesh_export.clean_mesh)
    mesh_export.clean_mesh = cleaner  # export_mesh looks it up in its module at call time
    results: Dict = {
        "date": date, "commit": commit, "dirty": dirty,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
        "scene": str(config.scene), "mesh_resolution": config.mesh_resolution, "num_points": config.num_points,
        "stand_in_modules": MISSING_MODULES,
        "mesh_cleaning": "trimesh (clean_mesh_with_trimesh)" if "pymeshlab" in MISSING_MODULES else "pymeshlab",
        "parity": None, "runs": [], "errors": [],
    }
    path = config.output_dir / f"{date}-{commit}.json"

    def save() -> None:
        results["wall_seconds"] = time.perf_counter() - started
        path.write_text(json.dumps(results, indent=2) + "\n")

    def attempt(what: str, function: Callable[[], Optional[Dict]]) -> Optional[Dict]:
        """Run one phase; a failure is printed and recorded, and the other phases still run."""
        try:
            return function()
        except Exception as error:  # noqa: BLE001 - every phase reports what it can
            console.print(f"[bold red]{what} failed: {error!r}")
            traceback.print_exc()
            results["errors"].append({"phase": what, "error": repr(error), "traceback": traceback.format_exc()})
            return None
        finally:
            save()

    console.print(f"{results['device']}, torch {results['torch']} (CUDA {results['cuda']}), commit {commit}; "
                  f"stand-ins for {MISSING_MODULES or 'nothing'}; mesh cleaning: {results['mesh_cleaning']}")
    results["parity"] = attempt("gradient parity", lambda: gradient_parity(config, device))
    if results["parity"] is not None:
        print_parity(results["parity"])
    gt = load_mesh(config.scene / "gt" / "mesh.ply")
    first = attempt("first run", lambda: train_and_score(
        config, device, f"rays{config.rays}", config.rays, config.budget_seconds, tuple(sorted(config.marks)),
        cleaner, gt,
    ))
    if first is not None:
        results["runs"].append(first)
        print_run(first)
    if config.second_rays is not None:
        budget = second_budget(config, first, started) if first is not None else None
        if budget is None:
            console.print(f"second run ({config.second_rays} rays) skipped: no budget fits before the deadline")
            results["errors"].append({"phase": "second run", "error": "skipped: no budget fits before the deadline"})
        else:
            second = attempt("second run", lambda: train_and_score(
                config, device, f"rays{config.second_rays}", config.second_rays, budget,
                second_marks(config, budget), cleaner, gt,
            ))
            if second is not None:
                results["runs"].append(second)
                print_run(second)
    save()
    for record in results["runs"]:
        print_run(record)
    console.print(f"results: {path} ({results['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main(tyro.cli(GpuCheck))
