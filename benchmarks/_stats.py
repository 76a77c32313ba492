"""Summary statistics the benchmark reports share: over seeds, trials or repeats.

Each says what an empty input gives (a report row must render when no run finished), and
:func:`finite` keeps only real numbers (MLflow and codecarbon leave None or NaN behind).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def finite(value: Any, default: Any = None) -> Any:
    """``value`` as a float if it is a finite number, else ``default``."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return default


def mean(values: Sequence[float], empty: Any = math.nan) -> Any:
    """The mean (``statistics.fmean``), or ``empty`` for no values."""
    return statistics.fmean(values) if values else empty


def median(values: Sequence[float], empty: Any = math.nan) -> Any:
    """The median, or ``empty`` for no values."""
    return statistics.median(values) if values else empty


def std(values: Sequence[float]) -> float:
    """The sample standard deviation; 0.0 for fewer than two values."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def describe(prefix: str, values: Sequence[float], *stats: str) -> dict[str, Any]:
    """``{"<prefix>_<stat>": value}`` for each of ``stats``: ``mean``, ``std``, ``median``."""
    funcs = {"mean": mean, "std": std, "median": median}
    return {f"{prefix}_{stat}": funcs[stat](values) for stat in stats}


def ratio(num: Any, den: Any) -> float | None:
    """``num / den``; None when either is missing or not finite, or ``den`` is not positive."""
    num, den = finite(num), finite(den)
    return num / den if num is not None and den is not None and den > 0 else None
