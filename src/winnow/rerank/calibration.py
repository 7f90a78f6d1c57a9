"""Calibration: turn a cross-encoder's raw logits into probabilities that mean what they say.

Raw logits differ per model and a plain sigmoid of them is rarely calibrated (a 0.9 is not right 90% of
the time). Platt scaling fits ``sigmoid(a * logit + b)``; isotonic regression fits any monotone step
curve (more flexible, needs more data). Both are fitted on labelled (logit, label) pairs and saved as
JSON; expected calibration error (ECE) and a reliability diagram say how well it worked.

A calibration belongs to one model: the JSON records its fingerprint (``winnow.models.fingerprint``) and
is ignored (with a warning) once the model changes, so a retrained model never inherits a stale calibration.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from winnow.models.fingerprint import CALIBRATION_FILE, model_fingerprint
from winnow.paths import cache_root

logger = logging.getLogger("winnow.rerank")

CALIBRATION_KINDS = ("sigmoid", "platt", "isotonic")


class Calibrator(Protocol):
    kind: str

    def transform(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities in [0, 1], one per logit."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


@dataclass(frozen=True, slots=True)
class SigmoidCalibrator:
    """The default: a plain sigmoid of the logit (what an uncalibrated model reports)."""

    kind: str = "sigmoid"

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return _sigmoid(np.asarray(logits, dtype=np.float64))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


@dataclass(frozen=True, slots=True)
class PlattCalibrator:
    """``sigmoid(a * logit + b)``."""

    a: float
    b: float
    kind: str = "platt"

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return _sigmoid(self.a * np.asarray(logits, dtype=np.float64) + self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "a": self.a, "b": self.b}


@dataclass(frozen=True, slots=True)
class IsotonicCalibrator:
    """A non-decreasing curve through (``x``, ``y``) knots, linear between them, flat outside."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    kind: str = "isotonic"

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(logits, dtype=np.float64), self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": list(self.x), "y": list(self.y)}


def _check_data(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if len(x) != len(y):
        raise ValueError(f"got {len(x)} logits but {len(y)} labels")
    if not np.isfinite(x).all():
        raise ValueError("logits must be finite numbers")
    if not ((y == 0) | (y == 1)).all():
        raise ValueError("labels must be 0 or 1")
    if y.min(initial=1) == y.max(initial=0):
        raise ValueError(
            f"calibration needs both relevant and non-relevant examples (got {len(y)} of one kind)"
        )
    return x, y


def _log_loss(x: np.ndarray, target: np.ndarray, a: float, b: float) -> float:
    z = a * x + b
    # -[t log p + (1 - t) log(1 - p)] with p = sigmoid(z), written without overflow
    return float(np.sum(target * np.logaddexp(0, -z) + (1 - target) * np.logaddexp(0, z)))


def fit_platt(logits: Any, labels: Any, iterations: int = 100) -> PlattCalibrator:
    """Platt scaling: Newton's method with a backtracking line search on the log loss, started from the
    base rate, with Platt's smoothed targets (so a separable set still gives finite a and b). Any
    monotone score works as input, BM25 scores included."""
    x, y = _check_data(logits, labels)
    positives = y.sum()
    negatives = len(y) - positives
    target = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    a, b = 0.0, float(np.log((positives + 1) / (negatives + 1)))
    loss = _log_loss(x, target, a, b)
    for _ in range(iterations):
        p = _sigmoid(a * x + b)
        weight = np.maximum(p * (1 - p), 1e-12)
        gradient = np.array([np.dot(p - target, x), np.sum(p - target)])
        hessian = np.array([[np.dot(weight, x * x), np.dot(weight, x)], [np.dot(weight, x), weight.sum()]])
        step = np.linalg.solve(hessian + 1e-12 * np.eye(2), gradient)
        size = 1.0
        while size > 1e-10:
            new_loss = _log_loss(x, target, a - size * step[0], b - size * step[1])
            if new_loss <= loss - 1e-4 * size * float(np.dot(gradient, step)):
                break
            size /= 2
        else:
            break  # no step lowers the loss: converged
        a, b = a - size * step[0], b - size * step[1]
        converged = loss - new_loss < 1e-12 * max(1.0, loss)
        loss = new_loss
        if converged:
            break
    return PlattCalibrator(float(a), float(b))


def fit_isotonic(logits: Any, labels: Any) -> IsotonicCalibrator:
    """Isotonic regression by pool-adjacent-violators; knots at each pooled block's logit range."""
    x, y = _check_data(logits, labels)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    # Equal logits must get one value, so start from one block per distinct logit.
    starts = np.flatnonzero(np.r_[True, np.diff(x) > 0])
    sums = list(np.add.reduceat(y, starts))
    counts = list(np.diff(np.r_[starts, len(x)]).astype(float))
    lows = list(x[starts])
    highs = list(x[np.r_[starts[1:] - 1, len(x) - 1]])
    blocks: list[list[float]] = []  # [sum, count, low, high]
    for block in zip(sums, counts, lows, highs, strict=True):
        blocks.append(list(block))
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            total, count, _, high = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
            blocks[-1][3] = high
    knots_x: list[float] = []
    knots_y: list[float] = []
    for total, count, low, high in blocks:
        for point in (low, high) if high > low else (low,):
            knots_x.append(float(point))
            knots_y.append(float(total / count))
    return IsotonicCalibrator(tuple(knots_x), tuple(knots_y))


def fit_calibrator(kind: str, logits: Any, labels: Any) -> Calibrator:
    """Fit ``"platt"`` or ``"isotonic"``; ``"sigmoid"`` needs no data."""
    if kind == "platt":
        return fit_platt(logits, labels)
    if kind == "isotonic":
        return fit_isotonic(logits, labels)
    if kind == "sigmoid":
        return SigmoidCalibrator()
    raise ValueError(f"calibration method must be one of {CALIBRATION_KINDS}, got {kind!r}")


def calibrator_from_dict(data: Mapping[str, Any], where: str = "calibration") -> Calibrator:
    kind = data.get("kind")
    try:
        if kind == "sigmoid":
            return SigmoidCalibrator()
        if kind == "platt":
            return PlattCalibrator(float(data["a"]), float(data["b"]))
        if kind == "isotonic":
            x, y = tuple(map(float, data["x"])), tuple(map(float, data["y"]))
            if len(x) != len(y) or not x or any(np.diff(x) < 0) or any(np.diff(y) < 0):
                raise ValueError("x and y must be equally long, non-empty and non-decreasing")
            return IsotonicCalibrator(x, y)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: malformed {kind} calibrator ({exc})") from None
    raise ValueError(f"{where}: field 'kind' must be one of {CALIBRATION_KINDS}, got {kind!r}")


# quality ------------------------------------------------------------------------------------------
def expected_calibration_error(probabilities: Any, labels: Any, bins: int = 10) -> float:
    """ECE: the gap between confidence and accuracy per equal-width bin, weighted by bin size."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if len(p) != len(y) or not len(p):
        raise ValueError(f"ECE needs as many labels as probabilities, at least one (got {len(p)}, {len(y)})")
    which = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.sum() / len(p) * abs(p[inside].mean() - y[inside].mean())
    return float(error)


def reliability_diagram(
    curves: Mapping[str, tuple[Any, Any]], path: str | os.PathLike[str], bins: int = 10, title: str = ""
) -> Path:
    """A PNG with observed frequency against mean predicted probability per bin, one line per curve
    (e.g. {"sigmoid": (probs, labels), "platt": (probs, labels)}); the diagonal is perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    for name, (probabilities, labels) in curves.items():
        p = np.asarray(probabilities, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64)
        which = np.minimum((p * bins).astype(int), bins - 1)
        used = [b for b in range(bins) if (which == b).any()]
        axis.plot(
            [p[which == b].mean() for b in used],
            [y[which == b].mean() for b in used],
            marker="o",
            label=f"{name} (ECE {expected_calibration_error(p, y, bins):.3f})",
        )
    axis.set(xlabel="predicted probability", ylabel="observed fraction relevant", xlim=(0, 1), ylim=(0, 1))
    axis.set_title(title or "Reliability diagram")
    axis.legend(loc="upper left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# where calibrations live -------------------------------------------------------------------------
def calibration_cache_dir() -> Path:
    """$WINNOW_CACHE_DIR/calibration, else ~/.cache/winnow/calibration."""
    return cache_root() / "calibration"


def _installed(model_dir: Path) -> bool:
    """True for models inside an installed package (Winnow's bundled ones, pip-shipped ones)."""
    resolved = model_dir.resolve()
    package = Path(__file__).resolve().parents[1]  # the winnow package folder
    prefixes = [Path(p).resolve() for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    return resolved.is_relative_to(package) or any(resolved.is_relative_to(p) for p in prefixes)


def cache_calibration_path(model_dir: str | os.PathLike[str]) -> Path:
    folder = Path(model_dir).resolve()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in folder.name)
    return calibration_cache_dir() / f"{safe}-{model_fingerprint(folder)}" / CALIBRATION_FILE


def calibration_target(model_dir: str | os.PathLike[str]) -> Path:
    """Where ``winnow calibrate`` saves: beside the model when that folder is writable and not part
    of an installed package, else the per-model cache file."""
    folder = Path(model_dir)
    if not _installed(folder) and os.access(folder, os.W_OK):
        return folder / CALIBRATION_FILE
    return cache_calibration_path(folder)


def save_calibrator(
    calibrator: Calibrator, path: str | os.PathLike[str], model_dir: str | os.PathLike[str], **info: Any
) -> Path:
    """Write the calibrator, the fingerprint of the weights it was fitted for, and ``info`` as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**calibrator.to_dict(), "weights": model_fingerprint(model_dir), **info}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def load_calibrator(path: str | os.PathLike[str]) -> Calibrator:
    """Read a calibration JSON written by ``save_calibrator``; a clear ValueError names the file."""
    return calibrator_from_dict(_read_record(Path(path)), str(path))


def find_calibrator(model_dir: str | os.PathLike[str]) -> tuple[Calibrator, Path] | None:
    """The saved calibration of these weights, or None: the cache's first (only ``winnow calibrate``
    writes there, so it is the user's own fit and wins over one shipped with the model), then the one
    beside the model (the bundled model ships one).

    A file whose weights fingerprint does not match (the model was retrained) is skipped with a warning.
    """
    folder = Path(model_dir)
    cached = cache_calibration_path(folder)
    if cached.is_file():
        return load_calibrator(cached), cached
    beside = folder / CALIBRATION_FILE
    if beside.is_file():
        record = _read_record(beside)
        if record.get("weights") in (None, model_fingerprint(folder)):
            return calibrator_from_dict(record, str(beside)), beside
        logger.warning("%s was fitted for other weights (the model changed); using a plain sigmoid", beside)
    return None
