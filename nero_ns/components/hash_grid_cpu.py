"""The hash grid's C++ kernel for the CPU: the same features, spatial derivative and table gradient as the PyTorch
grid, computed in one pass per point instead of a dozen whole-tensor operations.

It is compiled once per machine with torch's extension builder (a C++ compiler is all it needs; `install.sh` builds
it) and cached by torch. Where it cannot be built, or with `NERO_NS_CPU_KERNEL=0`, the grid runs its PyTorch code,
which gives the same numbers; on a GPU the PyTorch code (or tinycudann) always runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path
from types import ModuleType
from typing import Iterator, Optional, Tuple

import torch
from jaxtyping import Float
from torch import Tensor

SOURCE = Path(__file__).with_name("nero_hash_grid.cpp")
BUILD_FLAGS = ("-O3", "-fopenmp")
"""Compiler flags. Without -fopenmp, at::parallel_for (OpenMP in torch's CPU builds) runs on one thread."""
# Named after the source's content and flags and built from a copy in its build folder: every checkout of the same
# source shares one build (torch rebuilds when the source path it is given changes), and a change builds anew.
KERNEL_NAME = f"{SOURCE.stem}_{hashlib.sha1(SOURCE.read_bytes() + repr(BUILD_FLAGS).encode()).hexdigest()[:12]}"
_kernel: Optional[ModuleType] = None
_unavailable: Optional[str] = None
_pytorch_only = False


def load_kernel(verbose: bool = False) -> Optional[ModuleType]:
    """The compiled kernel, built on first use (about a minute, then cached by torch); None where it cannot be
    built or is turned off, after saying why once."""
    global _kernel, _unavailable
    if _kernel is not None or _unavailable is not None:
        return _kernel
    if os.environ.get("NERO_NS_CPU_KERNEL", "1") == "0":
        _unavailable = "turned off by NERO_NS_CPU_KERNEL=0"
        return None
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # its CUDA_HOME notice is not ours
    from torch.utils import cpp_extension

    try:
        build_directory = Path(cpp_extension._get_build_directory(KERNEL_NAME, False))
        if not (build_directory / f"{KERNEL_NAME}.so").exists():
            print("nero-ns: compiling the CPU hash-grid kernel (once per machine, about a minute)")
        source = build_directory / f"{KERNEL_NAME}.cpp"
        if not source.exists():
            partial = source.with_name(f".{source.name}.{os.getpid()}")
            partial.write_bytes(SOURCE.read_bytes())
            os.replace(partial, source)  # concurrent first runs never compile a half-written copy
        _kernel = cpp_extension.load(
            name=KERNEL_NAME, sources=[str(source)], extra_cflags=list(BUILD_FLAGS), extra_ldflags=["-fopenmp"],
            verbose=verbose,
        )
    except Exception as error:  # no compiler, no headers: the PyTorch grid gives the same numbers, only slower
        _unavailable = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        print(f"nero-ns: the CPU hash-grid kernel could not be built ({_unavailable}); using the PyTorch grid")
    return _kernel


def kernel_applies(unit_cube: Tensor, table: Tensor) -> bool:
    """Whether the kernel can compute this call: float32 CPU tensors and no gradient wanted for the positions (the
    kernel differentiates the table only; autograd-mode SDF gradients take the PyTorch path)."""
    if _pytorch_only or unit_cube.device.type != "cpu" or table.dtype != torch.float32 or unit_cube.dtype != torch.float32:
        return False
    if unit_cube.requires_grad and torch.is_grad_enabled():
        return False
    return load_kernel() is not None


@contextlib.contextmanager
def pytorch_grid_only() -> Iterator[None]:
    """Within it the grid runs its PyTorch code even where the kernel is built (to compare the two)."""
    global _pytorch_only
    previous, _pytorch_only = _pytorch_only, True
    try:
        yield
    finally:
        _pytorch_only = previous


class _HashGridFunction(torch.autograd.Function):
    """Features and Jacobian from the kernel; the backward gives the table's gradient only."""

    @staticmethod
    def forward(ctx, unit_cube, table, scalings, num_levels, active, with_jacobian):  # type: ignore[override]
        assert _kernel is not None
        features, jacobian = _kernel.forward(unit_cube, table, scalings, num_levels, active, with_jacobian)
        ctx.save_for_backward(unit_cube, scalings)
        ctx.table_rows, ctx.num_levels, ctx.active = table.shape[0], num_levels, active
        ctx.mark_non_differentiable(*(() if with_jacobian else (jacobian,)))
        return features, jacobian

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_features, grad_jacobian):  # type: ignore[override]
        assert _kernel is not None
        unit_cube, scalings = ctx.saved_tensors
        grad_jacobian = grad_jacobian if grad_jacobian is not None else grad_features.new_empty(0)
        grad_table = _kernel.backward(
            unit_cube, scalings, grad_features.contiguous(), grad_jacobian.contiguous(),
            ctx.table_rows, ctx.num_levels, ctx.active,
        )
        return None, grad_table, None, None, None, None


def hash_grid_cpu(
    unit_cube: Float[Tensor, "num_points 3"],
    table: Float[Tensor, "rows features"],
    scalings: Float[Tensor, "num_levels"],
    active: int,
    with_jacobian: bool,
) -> Tuple[Float[Tensor, "num_points out_dim"], Optional[Float[Tensor, "num_points 3 out_dim"]]]:
    """Features of all levels (zero from `active` on) and, with `with_jacobian`, their derivative along each axis
    of the unit cube, as `HashGrid.forward` returns them."""
    features, jacobian = _HashGridFunction.apply(
        unit_cube.detach().contiguous(), table, scalings.contiguous(), scalings.shape[0], active, with_jacobian
    )
    return features, jacobian if with_jacobian else None
