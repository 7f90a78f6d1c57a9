"""Cross-encoder inference in OpenVINO on the CPU, in fp32: ``auto`` on CPUs without bf16 units.

OpenVINO's CPU plugin has its own fp32 kernels for AVX2 and AVX-512 and fuses the transformer's
element-wise work into its matrix multiplies. The model is the ONNX Runtime backend's cached export,
converted once to OpenVINO's format and cached beside it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import openvino as ov

from winnow.models.architecture import check_cross_encoder
from winnow.models.hardware import cpu_threads
from winnow.models.onnx_export import export_folder
from winnow.rerank.backends.onnx_backend import exported_model


def converted_model(model_dir: Path) -> Path:
    """Path of the cached OpenVINO model (model.xml + model.bin), converting the ONNX export on first use."""
    target = export_folder(model_dir) / "openvino"
    if (target / "model.xml").is_file():
        return target / "model.xml"
    source = exported_model(model_dir, quantized=False)
    # Written into a temporary folder and renamed into place, so an interruption leaves no half model.
    temporary = Path(tempfile.mkdtemp(dir=target.parent, suffix=".partial"))
    try:
        ov.save_model(ov.convert_model(source), temporary / "model.xml", compress_to_fp16=False)
        with contextlib.suppress(OSError):  # another process may have finished the same conversion first
            os.replace(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target / "model.xml"


class OpenVinoBackend:
    """An exported cross-encoder compiled by OpenVINO for the CPU, computing in fp32."""

    name = "openvino"

    def __init__(self, model_dir: Path, device: str) -> None:
        self.device = device
        self.dtype = "fp32"
        self.num_labels = len(check_cross_encoder(model_dir).get("id2label") or {}) or 1
        core = ov.Core()
        # OpenVINO's own cache of the compiled model: a process's first compile takes ~0.15 s instead of
        # ~0.5 s (AMD EPYC, AVX2), which a one-off `winnow search` waits for. One entry per setting below.
        core.set_property({"CACHE_DIR": str(export_folder(model_dir) / "openvino-compiled")})
        compiled = core.compile_model(
            converted_model(model_dir),
            "CPU",
            {
                # One request at a time, each spread over torch's thread count (one per physical core).
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": cpu_threads(),
                # OpenVINO pins its threads to the first cores by default, so two processes on one machine
                # (`winnow serve --ray` replicas) would share those cores and leave the rest idle.
                "ENABLE_CPU_PINNING": False,
                # Never bf16/fp16, even on CPUs that have them: this backend must rank exactly like fp32.
                "INFERENCE_PRECISION_HINT": "f32",
            },
        )
        self._request = compiled.create_infer_request()
        self._inputs = {port.get_any_name() for port in compiled.inputs}
        # An infer request is not thread-safe, and ``arerank`` calls may share one Reranker across threads.
        self._lock = threading.Lock()

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: array for name, array in batch.items() if name in self._inputs}
        with self._lock:
            return np.array(self._request.infer(feed)[0], dtype=np.float32)  # a copy: the next call reuses it
