"""Pick the device and number format a model runs in, from what this machine actually has.

CPUs of the same machine kind differ: some have bf16 matrix units (AMX, AVX-512 BF16), others (AVX2-only
AMD EPYC, say) have none, and there oneDNN cannot even build a bf16 matrix multiply. So bf16 is chosen
only where torch reports the units AND oneDNN runs a bf16 matmul, and asking for it elsewhere is a
one-line ``UnsupportedHardwareError`` that names the CPU and what does work.
"""

from __future__ import annotations

from functools import cache

import torch

from winnow.errors import UnsupportedHardwareError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@cache
def cpu_name() -> str:
    """The CPU's model name and the widest vector instructions torch uses on it, e.g. 'AMD EPYC (AVX2)'."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model} ({torch.backends.cpu.get_cpu_capability()})"


def _onednn_runs_bf16_matmul() -> bool:
    """oneDNN's own answer: can it build and run a bf16 linear primitive here? (It cannot on AVX2-only
    CPUs, nor where ONEDNN_MAX_CPU_ISA caps it below AVX-512, which is how an AMX machine emulates one.)"""
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


def pick_device(device: str | None = None) -> str:
    """The device to run on: the one asked for, else cuda, then mps, then cpu."""
    if device is not None:
        if device.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device must be cpu, cuda or mps, not {device!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA GPU")
        return device
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
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        if device == "cpu" and dtype == "bf16" and not cpu_has_fast_bf16():
            raise UnsupportedHardwareError(
                f"dtype='bf16' needs a CPU with bf16 matrix units (AMX or AVX-512 BF16), and this one "
                f"({cpu_name()}) has none: use dtype='fp32', or leave dtype and backend to 'auto', which "
                "picks the fastest backend that runs here"
            )
        return dtype
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "mps":
        return "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"
