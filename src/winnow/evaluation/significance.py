"""Is the difference between two configurations real? A paired randomisation test from ranx.

Fisher's randomisation test (Smucker et al., CIKM 2007) on per-query values of one metric: it assumes
nothing about their distribution, which suits bounded, skewed IR metrics better than a t-test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class PairedTest:
    """Treatment against control on one metric over the same queries."""

    metric: str
    control: str
    treatment: str
    control_mean: float
    treatment_mean: float
    p_value: float
    significant: bool
    wins: int
    losses: int
    ties: int
    queries: int
    permutations: int

    def as_dict(self) -> dict:
        return asdict(self)


def paired_test(
    metric: str,
    control: tuple[str, Mapping[str, float]],
    treatment: tuple[str, Mapping[str, float]],
    alpha: float = 0.05,
    permutations: int = 10_000,
    seed: int = 42,
) -> PairedTest:
    """Compare per-query values (query id -> value) of two named configurations on ``metric``."""
    from ranx.statistical_tests import fisher_randomization_test

    queries = sorted(control[1])
    if sorted(treatment[1]) != queries:
        raise ValueError("a paired test needs both configurations scored on the same queries")
    a = np.array([control[1][q] for q in queries], dtype=np.float64)
    b = np.array([treatment[1][q] for q in queries], dtype=np.float64)
    p_value, significant = fisher_randomization_test(a, b, permutations, alpha, seed)
    return PairedTest(
        metric=metric,
        control=control[0],
        treatment=treatment[0],
        control_mean=float(a.mean()),
        treatment_mean=float(b.mean()),
        p_value=float(p_value),
        significant=bool(significant),
        wins=int((b > a).sum()),
        losses=int((b < a).sum()),
        ties=int((b == a).sum()),
        queries=len(queries),
        permutations=permutations,
    )
