"""A training run's settings, read from a recipe file (YAML) so that a run is reproducible by one command."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from winnow.errors import WinnowError
from winnow.training.losses import DISTILLATION_LOSSES, LOSSES
from winnow.training.negatives import MINING_MODES

ARCHITECTURES = ("gated", "classifier")
SOURCE_KINDS = ("path", "beir", "pubmedqa")


class RecipeError(WinnowError, ValueError):
    """A recipe is invalid; the message names the recipe and the setting."""


@dataclass
class TrainConfig:
    """Every setting of a training run. Paths are relative to the directory the command runs in.

    ``data`` and ``dev`` are lists of sources: ``{"path": "file.jsonl"}`` (pairs or grouped jsonl) or
    ``{"beir": "folder", "split": "train", "depth": 30, "mining": "bm25"}`` (qrels positives plus hard
    negatives from stage 1: ``bm25``, or Winnow's ``dense`` or ``hybrid`` retrieval) or
    ``{"pubmedqa": "folder", "split": "train"}`` (PubMedQA's labelled questions, each with its own abstract
    as the positive, mined like a BEIR folder; see ``read_pubmedqa``).
    Any source may set ``max_queries`` to use only its first queries, and ``skip_queries`` to pass over the
    first N (so one qrels file gives a dev set, ``max_queries: 100``, and a disjoint training set,
    ``skip_queries: 100``). ``head_learning_rate`` (default:
    ``learning_rate``) is for the one-logit classifier, which starts from random weights when the base is
    a plain encoder and learns far too slowly at an encoder's fine-tuning rate; the gated model's gates and
    similarity scale learn at that rate too. ``architecture`` says what a plain (bi-)encoder base becomes:
    "gated" (``winnow.models.gated_cross_encoder``: starts as the bi-encoder) or "classifier" (a standard
    ``*ForSequenceClassification`` with a fresh head); a base that is already a cross-encoder continues as is.
    ``interpolation`` below 1 makes the final model ``(1 - w) * start + w * best`` (WiSE-FT weight averaging):
    a small fine-tuning set then adds its domain without wiping out what the start knew.
    ``lexical_weight`` gives a gated model built from a plain encoder a lexical-match term (BM25 over the
    pair's word pieces, IDF counted on the training passages) with that starting weight.
    ``shut_gates_below`` sets the final gated model's cross-attention gates under that value to exactly 0:
    a layer whose gates are all 0 needs one attention call instead of two at inference (the dev score after
    shutting is reported, so the saving is not taken blind).
    ``layers`` keeps only the base's first N transformer layers: a smaller, faster student, usually
    distilled from a ``teacher`` (``loss: kl`` or ``margin_mse``) to prune candidates in a cascade.
    """

    data: list[dict[str, Any]]
    output: str = "runs/winnow-cross-encoder"
    base: str = "all-minilm-l6"
    architecture: str = "gated"
    name: str = ""
    dev: list[dict[str, Any]] = field(default_factory=list)
    loss: str = "listwise"
    teacher: str | None = None
    negatives: int = 4
    max_length: int = 128
    batch_size: int = 8
    grad_accumulation: int = 1
    learning_rate: float = 5e-5
    head_learning_rate: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    epochs: int = 1
    max_steps: int | None = None
    freeze_embeddings: bool = True
    eval_every: int = 100
    patience: int = 3
    checkpoint_every: int = 50
    seed: int = 13
    device: str | None = None
    dtype: str | None = None
    save_dtype: str = "fp16"
    interpolation: float = 1.0
    lexical_weight: float | None = None
    shut_gates_below: float | None = None
    layers: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if not self.data:
            raise RecipeError("no training data: set 'data' to at least one source")
        for source in [*self.data, *self.dev]:
            if not isinstance(source, dict) or sum(kind in source for kind in SOURCE_KINDS) != 1:
                raise RecipeError(
                    f"a data source needs exactly one of {', '.join(map(repr, SOURCE_KINDS))}, got {source!r}"
                )
            for key in ("max_queries", "skip_queries"):
                value = source.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                    raise RecipeError(f"{key} must be a whole number >= 0, in {source!r}")
            if source.get("mining", "bm25") not in MINING_MODES:
                raise RecipeError(f"mining must be one of {', '.join(MINING_MODES)}, in {source!r}")
        if self.loss in DISTILLATION_LOSSES and not self.teacher:
            raise RecipeError(f"loss {self.loss!r} distils from a teacher: set 'teacher' to a cross-encoder")
        if self.loss not in LOSSES and self.loss not in DISTILLATION_LOSSES:
            raise RecipeError(
                f"loss must be one of {', '.join([*LOSSES, *DISTILLATION_LOSSES])}, not {self.loss!r}"
            )
        for name in (
            "negatives",
            "max_length",
            "batch_size",
            "grad_accumulation",
            "epochs",
            "eval_every",
            "checkpoint_every",
        ):
            if getattr(self, name) < 1:
                raise RecipeError(f"{name} must be at least 1, not {getattr(self, name)!r}")
        if self.architecture not in ARCHITECTURES:
            raise RecipeError(
                f"architecture must be one of {', '.join(ARCHITECTURES)}, not {self.architecture!r}"
            )
        if self.layers is not None and (
            isinstance(self.layers, bool) or not isinstance(self.layers, int) or self.layers < 1
        ):
            raise RecipeError(f"layers must be a positive number of transformer layers, not {self.layers!r}")
        if not 0.0 < self.interpolation <= 1.0:
            raise RecipeError(f"interpolation must be in (0, 1], not {self.interpolation!r}")
        if self.shut_gates_below is not None and (
            isinstance(self.shut_gates_below, bool)
            or not isinstance(self.shut_gates_below, int | float)
            or not 0.0 < self.shut_gates_below <= 1.0
        ):
            raise RecipeError(f"shut_gates_below must be a number in (0, 1], not {self.shut_gates_below!r}")
        if self.save_dtype not in ("fp16", "fp32", "bf16"):
            raise RecipeError(f"save_dtype must be fp16, bf16 or fp32, not {self.save_dtype!r}")

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a recipe; ``overrides`` (e.g. from the command line) win over the file when not None."""
        path = Path(path)
        try:
            settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise RecipeError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(settings, dict):
            raise RecipeError(f"{path}: a recipe must be a mapping of settings")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise RecipeError(
                f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        settings.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**settings)
        except TypeError as exc:
            raise RecipeError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data, stored beside every checkpoint and model."""
        return dataclasses.asdict(self)
