"""bf16 is a capability of the CPU, not an assumption: detected, refused in one line where absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from winnow.errors import UnsupportedHardwareError, WinnowError
from winnow.models import hardware
from winnow.rerank import Reranker
from winnow.rerank.backends import choose_backend


@pytest.fixture
def cpu_without_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this process see a CPU without bf16 units, as an AVX2-only AMD EPYC is."""
    monkeypatch.setattr(hardware, "cpu_bf16_units", lambda: None)


def test_cpu_name_says_model_and_vector_width() -> None:
    name = hardware.cpu_name()
    assert "(" in name and name.endswith(")")
    assert any(isa in name for isa in ("AVX2", "AVX512", "DEFAULT", "ZVECTOR", "NO AVX"))


def test_auto_never_picks_bf16_without_units(cpu_without_bf16) -> None:
    backend, _, dtype = choose_backend("auto", "cpu", None)
    assert dtype != "bf16" and backend == "openvino"
    assert hardware.pick_dtype("cpu") == "fp32"


def test_explicit_bf16_without_units_is_one_clear_line(cpu_without_bf16) -> None:
    with pytest.raises(UnsupportedHardwareError) as caught:
        hardware.pick_dtype("cpu", "bf16")
    message = str(caught.value)
    assert "\n" not in message
    assert "AMX" in message and "fp32" in message and hardware.cpu_name() in message
    assert isinstance(caught.value, WinnowError)


def test_reranker_refuses_bf16_before_loading_anything(cpu_without_bf16, minilm_cross_encoder) -> None:
    with pytest.raises(UnsupportedHardwareError, match="bf16 matrix units"):
        Reranker(minilm_cross_encoder, backend="torch", dtype="bf16")


def test_a_capped_onednn_is_seen_as_a_cpu_without_bf16(minilm_cross_encoder) -> None:
    """ONEDNN_MAX_CPU_ISA=AVX2 is how an AMX machine emulates an AVX2-only one. Whatever oneDNN then
    answers, Winnow agrees: it refuses bf16 in one line or runs it, never a raw oneDNN error."""
    script = (
        "from winnow.models.hardware import cpu_bf16_units\n"
        "from winnow.errors import UnsupportedHardwareError\n"
        "from winnow.rerank import Reranker\n"
        "units = cpu_bf16_units()\n"
        "try:\n"
        f"    Reranker({str(minilm_cross_encoder)!r}, backend='torch', dtype='bf16').score([('a', 'b')])\n"
        "    print('ran', units)\n"
        "except UnsupportedHardwareError:\n"
        "    print('refused', units)\n"
    )
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    outcome, units = done.stdout.split()
    assert (outcome, units == "None") in (("refused", True), ("ran", False))


@pytest.mark.parametrize("omp", [None, "1"], ids=["default", "OMP_NUM_THREADS=1"])
def test_answers_without_torch_are_the_ones_torch_gives(omp: str | None) -> None:
    """Thread count, device, bf16 units and dtype: first as Winnow answers before torch is loaded, then
    after importing torch, in one fresh process each."""
    code = (
        "import json, sys\n"
        "from winnow.models import hardware as h\n"
        "before = [h.cpu_threads(), h.pick_device(), h.cpu_bf16_units(), h.pick_dtype('cpu')]\n"
        "loaded = 'torch' in sys.modules\n"
        "import torch\n"
        "h.cpu_bf16_units.cache_clear()\n"
        "device = 'cuda' if torch.cuda.is_available() else 'cpu'\n"
        "after = [torch.get_num_threads(), device, h.cpu_bf16_units(), h.pick_dtype('cpu')]\n"
        "print(json.dumps([before, after, loaded]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if omp is not None:
        env["OMP_NUM_THREADS"] = omp
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    before, after, loaded = json.loads(done.stdout.splitlines()[-1])
    assert before == after
    if after[1] == "cpu" and after[2] is None and sys.platform.startswith("linux"):
        assert not loaded  # the common case answered from /proc alone
