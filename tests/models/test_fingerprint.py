"""One model fingerprint keys ONNX exports, evaluation score caches and calibrations: it must follow the
model's content wherever the folder lives, and nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from winnow.models import resolve_model
from winnow.models.fingerprint import model_fingerprint
from winnow.models.onnx_export import export_folder


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    bundled = resolve_model("winnow-minilm-l6")
    copy = tmp_path / "copy"
    shutil.copytree(bundled, copy)
    return copy


def test_a_copy_has_the_bundled_models_fingerprint_and_calibrating_it_keeps_it(model_copy: Path) -> None:
    bundled = resolve_model("winnow-minilm-l6")
    assert model_fingerprint(model_copy) == model_fingerprint(bundled)
    # calibration.json is fitted from the model: writing one must not change what it is keyed by.
    (model_copy / "calibration.json").write_text('{"kind": "platt", "a": 2.0, "b": 0.0}\n')
    (model_copy / "README.md").write_text("notes\n")
    assert model_fingerprint(model_copy) == model_fingerprint(bundled)


def test_one_changed_byte_in_the_middle_of_the_weights_is_a_new_model(model_copy: Path) -> None:
    """A shut gate or one retrained layer changes bytes far from the file's ends: a stale ONNX export
    or cached score must not be reused for it."""
    before = model_fingerprint(model_copy)
    weights = model_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert model_fingerprint(model_copy) != before
    assert export_folder(model_copy).name.startswith(model_fingerprint(model_copy))


def test_a_changed_config_or_tokenizer_is_a_new_model(model_copy: Path) -> None:
    before = model_fingerprint(model_copy)
    config = model_copy / "config.json"
    config.write_text(config.read_text().replace("{", '{\n  "lexical_weight": 0.5,', 1))
    after_config = model_fingerprint(model_copy)
    assert after_config != before
    tokenizer = model_copy / "tokenizer_config.json"
    tokenizer.write_text(tokenizer.read_text().replace("{", '{\n  "model_max_length": 128,', 1))
    assert model_fingerprint(model_copy) not in (before, after_config)
