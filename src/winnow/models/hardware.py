"""Pick the device and number format a model runs in, from what this machine actually has.

CPUs of the same machine kind differ: some have bf16 matrix units (AMX, AVX-512 BF16), others (AVX2-only
AMD EPYC, say) have none, and there oneDNN cannot even build a bf16 matrix multiply. So bf16 is chosen
only where torch reports the units AND oneDNN runs a bf16 matmul, and asking for it elsewhere is a
one-line ``UnsupportedHardwareError`` that names the CPU and what does work.

torch is imported only where an answer needs it: on a Linux machine without a GPU driver and without
bf16 flags in /proc/cpuinfo the answers are "cpu" and "fp32" whatever torch would say, and a command
that needs no torch model (a search on the OpenVINO and ONNX Runtime backends) starts seconds sooner.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from winnow.errors import UnsupportedHardwareError

if TYPE_CHECKING:
    import torch

DTYPE_NAMES = ("fp32", "bf16", "fp16")
# Where a GPU driver shows itself on Linux: NVIDIA's (CUDA) and AMD's (ROCm, which torch calls cuda too).
GPU_DRIVER_PATHS = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd")
BF16_CPU_FLAGS = {"amx_tile", "amx_bf16", "avx512_bf16"}


def torch_dtype(name: str) -> torch.dtype:
    """The torch number format of a dtype name ("fp32", "bf16", "fp16")."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


@cache
def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo, or None where there is none to read (not Linux)."""
    for line in _cpuinfo():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


def cpu_threads() -> int:
    """Threads for one inference call: torch's own count once torch is loaded (it follows the user's
    ``torch.set_num_threads``), else what torch would pick: OMP_NUM_THREADS, or one per physical core."""
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    asked = os.environ.get("OMP_NUM_THREADS", "")
    if asked.isdigit() and int(asked) > 0:
        return int(asked)
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    cores, processor, package = set(), -1, "0"
    for line in _cpuinfo():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "processor":
            processor = int(value)
        elif key == "physical id":
            package = value
        elif key == "core id" and processor in allowed:
            cores.add((package, value))
    return len(cores) or os.cpu_count() or 1


@cache
def cpu_name() -> str:
    """The CPU's model name and the widest vector instructions torch uses on it, e.g. 'AMD EPYC (AVX2)'."""
    names = [line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")]
    model = names[0] if names else "unknown CPU"
    import torch

    return f"{model} ({torch.backends.cpu.get_cpu_capability()})"


def _onednn_runs_bf16_matmul() -> bool:
    """oneDNN's own answer: can it build and run a bf16 linear primitive here? (It cannot on AVX2-only
    CPUs, nor where ONEDNN_MAX_CPU_ISA caps it below AVX-512, which is how an AMX machine emulates one.)"""
    import torch

    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return False
    x = torch.ones(2, 32, dtype=torch.bfloat16)
    try:
        torch.ops.mkldnn._linear_pointwise(x, torch.ones(16, 32, dtype=torch.bfloat16), None, "none", [], "")
    except RuntimeError:
        return False
    return True


@cache
def cpu_bf16_units() -> str | None:
    """The CPU's bf16 matrix unit that oneDNN can use ('AMX' or 'AVX-512 BF16'), or None."""
    flags = _cpu_flags()
    if flags is not None and not flags & BF16_CPU_FLAGS:
        return None  # no such unit: the kernel lists every one the CPU has
    import torch

    if torch.cpu._is_amx_tile_supported():
        unit = "AMX"
    elif torch.cpu._is_avx512_bf16_supported():
        unit = "AVX-512 BF16"
    else:
        return None
    return unit if _onednn_runs_bf16_matmul() else None


def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AMX or AVX-512 BF16), where bf16 beats fp32."""
    return cpu_bf16_units() is not None


def _surely_no_gpu() -> bool:
    """True on Linux when no GPU driver is loaded: torch would find no GPU, so it need not be asked."""
    return sys.platform.startswith("linux") and not any(os.path.exists(path) for path in GPU_DRIVER_PATHS)


def pick_device(device: str | None = None) -> str:
    """The device to run on: the one asked for, else cuda, then mps, then cpu."""
    if device is not None:
        if device.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device must be cpu, cuda or mps, not {device!r}")
        if device.startswith("cuda") and (_surely_no_gpu() or not _cuda_available()):
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA GPU")
        return device
    if _surely_no_gpu():
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str, dtype: str | None = None) -> str:
    """The number format: the one asked for, else bf16/fp16 on GPUs and bf16 on CPUs that have it.

    bf16 asked for on a CPU without bf16 units is refused rather than emulated: emulated bf16 is slower
    than fp32 and ranks less like it, so a silent fallback would hide the mistake.
    """
    if dtype is not None:
        if dtype not in DTYPE_NAMES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPE_NAMES)}, not {dtype!r}")
        if device == "cpu" and dtype == "bf16" and not cpu_has_fast_bf16():
            raise UnsupportedHardwareError(
                f"dtype='bf16' needs a CPU with bf16 matrix units (AMX or AVX-512 BF16), and this one "
                f"({cpu_name()}) has none: use dtype='fp32', or leave dtype and backend to 'auto', which "
                "picks the fastest backend that runs here"
            )
        return dtype
    if device.startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "mps":
        return "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
