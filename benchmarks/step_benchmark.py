"""Cost of nero-shape's field evaluations and optimizer step: the hash grid, the SDF gradient and Adam, as ratios
measured in one run.

    python benchmarks/step_benchmark.py                # 16384 points (512 rays x 32 samples), 7 rounds
    python benchmarks/step_benchmark.py --points 32768 --threads 1
    python benchmarks/step_benchmark.py --load-config outputs/.../config.yml   # also whole steps of a trained run

For the SDF field (forward with its gradient, then the backward of an eikonal + SDF + feature loss, as one training
step does at every inside sample) and the far field (forward and backward), times each variant on the same points
with every hash level unlocked, the variants interleaved round by round, and prints the median and its ratio to the
previous implementation (nerfstudio's pure-PyTorch HashEncoding with autograd's double backward), then one Adam step
over both fields' parameters with nerfstudio's Adam and with the fused one, then (on a CPU with several threads) the
default SDF field on one thread against all of them. On the CPU our grid
runs its C++ kernel where it is built; "PyTorch code" rows run the same grid without it. Results are written to
benchmarks/results/step/<date>-<commit>.json (and .md); the time-to-quality curve (`curve_benchmark.py`) is what
judges defaults.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Dict, List, Optional

import torch
import tyro
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.field_components.encodings import HashEncoding
from common import markdown_table, print_table, run_record, write_results
from nero_ns.components.hash_grid_cpu import pytorch_grid_only
from nero_ns.engine.optimizers import FusedAdamOptimizerConfig
from nero_ns.fields.far_field import FarFieldConfig
from nero_ns.fields.sdf_field import NeroSDFField, NeroSDFFieldConfig


@dataclass
class StepBenchmark:
    points: int = 16384
    """Samples per call (nero-shape: rays per step x 32 inside samples)."""
    rounds: int = 7
    """Timed rounds per variant (after one warm-up), interleaved."""
    threads: Optional[int] = None
    """torch CPU threads (None: torch's default)."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Device to time on."""
    load_config: Optional[Path] = None
    """A trained nero-shape run: also time its whole training steps (rays, losses, backward) at its last checkpoint,
    with the grid's kernel and with its PyTorch code."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go (None: benchmarks/results/step)."""


def nerfstudio_grid_like(field: NeroSDFField) -> HashEncoding:
    """nerfstudio's pure-PyTorch HashEncoding with the field's grid settings and table (the previous backend)."""
    grid = field.config
    encoding = HashEncoding(
        num_levels=grid.num_levels, min_res=grid.min_res, max_res=grid.max_res,
        log2_hashmap_size=grid.log2_hashmap_size, features_per_level=grid.features_per_level, implementation="torch",
    )
    encoding.load_state_dict(field.encoding.encoding.state_dict())
    return encoding


# Variants that run our grid without its CPU kernel.
PYTORCH_CODE = "PyTorch code"


def grid_code(name: str) -> ContextManager:
    """The context a variant runs in: the grid's PyTorch code for PYTORCH_CODE variants, else as configured."""
    return pytorch_grid_only() if PYTORCH_CODE in name else contextlib.nullcontext()


def sdf_variants(device: str) -> Dict[str, NeroSDFField]:
    """The SDF field in each variant, all with the same weights."""
    torch.manual_seed(0)
    variants: Dict[str, NeroSDFField] = {}
    for name, mode in (("previous: nerfstudio grid, autograd", "autograd"), ("our grid, autograd", "autograd"),
                       (f"our grid, analytic, {PYTORCH_CODE}", "analytic"), ("our grid, analytic (default)", "analytic"),
                       ("our grid, finite-difference", "finite-difference")):
        field = NeroSDFFieldConfig(hash_implementation="torch", gradient_mode=mode).setup()
        if variants:
            field.load_state_dict(next(iter(variants.values())).state_dict())
        else:
            with torch.no_grad():
                field.encoding.encoding.hash_table.normal_(0.0, 0.05)
        if name.startswith("previous"):
            field.encoding.encoding = nerfstudio_grid_like(field)
        field.set_step(1_000_000)
        variants[name] = field.to(device)
    return variants


def sdf_step(field: NeroSDFField, points: torch.Tensor) -> None:
    """One training step's work at `points`: SDF, feature and gradient, then the backward of a loss on all three."""
    sdf, feature, gradient = field.sdf_feature_gradient(points, create_graph=True)
    loss = ((gradient.norm(dim=-1) - 1.0) ** 2).mean() + sdf.abs().mean() + feature.square().mean()
    loss.backward()


def far_field_variants(device: str) -> Dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    config = FarFieldConfig(hash_implementation="torch")
    ours, previous = config.setup(), config.setup()
    previous.load_state_dict(ours.state_dict())
    previous.position_encoding = HashEncoding(
        num_levels=config.num_levels, min_res=16, max_res=config.max_res, log2_hashmap_size=config.log2_hashmap_size,
        implementation="torch",
    )
    previous.position_encoding.load_state_dict(ours.position_encoding.state_dict())
    return {"previous: nerfstudio grid": previous.to(device), f"our grid, {PYTORCH_CODE}": ours.to(device),
            "our grid (default)": ours.to(device)}


def far_field_step(field: torch.nn.Module, points: torch.Tensor) -> None:
    directions = torch.nn.functional.normalize(points, dim=-1)
    density, rgb = field(points, directions)
    (density.mean() + rgb.mean()).backward()


def optimizer_steps(modules: List[torch.nn.Module]) -> Dict[str, Callable[[], None]]:
    """One Adam step over the modules' parameters (given fixed gradients): nerfstudio's Adam, as nero-shape's
    optimizers were, and the fused Adam they use now, with nero-shape's learning rate and epsilon."""
    parameters = [parameter for module in modules for parameter in module.parameters()]
    generator = torch.Generator().manual_seed(2)
    for parameter in parameters:
        parameter.grad = torch.randn(parameter.shape, generator=generator).to(parameter.device)
    optimizers = {
        "previous: nerfstudio Adam": AdamOptimizerConfig(lr=1e-2, eps=1e-15).setup(parameters),
        "fused Adam (default)": FusedAdamOptimizerConfig(lr=1e-2, eps=1e-15).setup(parameters),
    }
    return {name: optimizer.step for name, optimizer in optimizers.items()}


def training_step(load_config: Path) -> Callable[[], None]:
    """One training step (batch, outputs, losses, backward) of the run at `load_config`, at its last checkpoint."""
    from nerfstudio.utils.eval_utils import eval_setup

    _, pipeline, _, step = eval_setup(load_config, test_mode="val")
    pipeline.train()
    pipeline.model.step = step
    pipeline.model.sdf_field.set_step(step)

    def run() -> None:
        _, loss_dict, _ = pipeline.get_train_loss_dict(step)
        sum(loss_dict.values()).backward()

    return run


def on_threads(threads: int, step: Callable[[], None]) -> Callable[[], None]:
    """`step` run on `threads` of torch's CPU threads (the count restored after)."""
    def run() -> None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            step()
        finally:
            torch.set_num_threads(previous)

    return run


def time_interleaved(
    steps: Dict[str, Callable[[], None]], rounds: int, device: str
) -> Dict[str, float]:
    """Median seconds of each callable over `rounds`, one round of every callable after the other."""
    def timed(step: Callable[[], None], name: str) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with grid_code(name):
            step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    for name, step in steps.items():
        timed(step, name)
    samples: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            samples[name].append(timed(step, name))
    return {name: statistics.median(values) for name, values in samples.items()}


def main(config: StepBenchmark) -> None:
    run_record()  # the commit and command that run, recorded before anything runs
    if config.threads:
        torch.set_num_threads(config.threads)
    generator = torch.Generator().manual_seed(1)
    inside = (torch.rand(config.points, 3, generator=generator) * 1.6 - 0.8).to(config.device)
    outside = torch.nn.functional.normalize(torch.randn(config.points, 3, generator=generator), dim=-1)
    outside = (outside * (1.0 + 20.0 * torch.rand(config.points, 1, generator=generator))).to(config.device)
    results: Dict[str, Dict[str, float]] = {}
    sdf = sdf_variants(config.device)
    results["SDF field: value, gradient, backward"] = time_interleaved(
        {name: (lambda field=field: sdf_step(field, inside)) for name, field in sdf.items()}, config.rounds,
        config.device,
    )
    far = far_field_variants(config.device)
    results["far field: value, backward"] = time_interleaved(
        {name: (lambda field=field: far_field_step(field, outside)) for name, field in far.items()}, config.rounds,
        config.device,
    )
    results["Adam step over both fields' parameters"] = time_interleaved(
        optimizer_steps([sdf["our grid, analytic (default)"], far["our grid (default)"]]), config.rounds, config.device
    )
    threads = torch.get_num_threads()
    if config.device == "cpu" and threads > 1:
        default_sdf_step = lambda: sdf_step(sdf["our grid, analytic (default)"], inside)  # noqa: E731
        results[f"SDF field on 1 and {threads} threads (default)"] = time_interleaved(
            {"1 thread": on_threads(1, default_sdf_step), f"{threads} threads": default_sdf_step}, config.rounds,
            config.device,
        )
    if config.load_config is not None:
        step = training_step(config.load_config)
        results[f"training step of {config.load_config.parent.name}"] = time_interleaved(
            {f"our grid, {PYTORCH_CODE}": step, "our grid (default)": step}, config.rounds, config.device
        )
        if config.device == "cpu" and threads > 1:
            results[f"training step on 1 and {threads} threads (default)"] = time_interleaved(
                {"1 thread": on_threads(1, step), f"{threads} threads": step}, config.rounds, config.device
            )
    title = (f"nero-shape field evaluations, {config.points} points, {config.device}, "
             f"{torch.get_num_threads()} threads (median of {config.rounds} interleaved rounds)")
    header = ["part", "variant", "ms", "x previous"]
    rows = [
        [part, name, f"{seconds * 1000:.1f}", f"{seconds / next(iter(medians.values())):.2f}"]
        for part, medians in results.items() for name, seconds in medians.items()
    ]
    print_table(title, header, rows)
    record = {**run_record(), "config": {**vars(config), "results_dir": str(config.results_dir)}, "seconds": results}
    write_results("step", record, f"# {title}\n\n`{record['command']}`\n\n{markdown_table(header, rows)}\n",
                  config.results_dir, False, Path("."))


if __name__ == "__main__":
    main(tyro.cli(StepBenchmark))
    sys.exit(0)
