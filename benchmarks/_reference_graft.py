"""The reference GRAFT selector, re-implemented for comparison only (GRAFT_NOTES §3.2).

The reference code (``decompositions.index_sel`` in ``ashishjv1/GRAFT`` and in the
``graft-pytorch`` 1.2.1 wheel, numpy path, which is the default ``--decomp numpy``) runs a greedy
elimination per batch in a Python loop. Restated:

    V = Vt^T[:, :r]                                  (B, r), one row per sample
    for i in 0 .. r-1:
        p = every row where |V| equals max|V[:, i]|  (searched over the *whole* matrix:
                                                      normally one row, several on exact ties)
        V[:, i+1:] -= V[:, :i+1] @ pinv(V[p, :i+1]) @ V[p, i+1:]
        keep p
    the caller flattens the kept rows and dedupes them with set()

Step ``i`` costs O(B (i+1) (r-i)) plus a pseudo-inverse, so O(B r^3) per batch; pivots can repeat,
so fewer than ``r`` distinct rows can come back. This module keeps the same arithmetic, in the
same order, in float32 numpy, so that its pivots match the package's bit for bit. One deliberate
difference: the reference eliminates in place on a *view* of its input, so it overwrites the
caller's ``Vt`` (and a second call with another rank sees the modified matrix); we work on a copy.

The package itself is never a dependency: :func:`load_graft_pytorch` imports it from a
throwaway folder (see benchmarks/README.md), and :func:`select_per_batch` calls its
``index_sel`` per batch as its ``sample_selection`` does.

Not part of ``graft_hpo``: the package uses :func:`graft_hpo.selection.fast_maxvol` instead.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "load_graft_pytorch",
    "reference_index_sel",
    "reference_select",
    "select_per_batch",
    "unique_rows",
]


def reference_index_sel(vt: np.ndarray, rank: int) -> list[np.ndarray]:
    """The reference greedy "Fast MaxVol" on one batch.

    Args:
        vt: ``(m, B)`` with ``m >= rank``: right singular vectors as rows (the reference's
            ``Vt``); only its first ``rank`` rows are used. Not modified.
        rank: number of greedy steps ``r``.

    Returns:
        ``rank`` int64 arrays, the row(s) picked at each step (usually one each).
    """
    V = np.array(np.transpose(vt)[:, :rank], copy=True)
    picked: list[np.ndarray] = []
    for i in range(rank):
        magnitude = np.abs(V)
        # The reference compares against the whole matrix, not column i only: an exact tie
        # anywhere (e.g. a zero maximum) picks several rows and turns pinv into least squares.
        rows = np.nonzero(magnitude == magnitude[:, i].max())[0]
        coef = np.linalg.pinv(V[rows, : i + 1]) @ V[rows, i + 1 :]
        V[:, i + 1 :] = V[:, i + 1 :] - V[:, : i + 1] @ coef
        picked.append(rows)
    return picked


def unique_rows(picked: Sequence[np.ndarray]) -> np.ndarray:
    """Flatten the per-step picks and drop repeats (first occurrence kept, greedy order)."""
    flat = np.concatenate([np.asarray(p, dtype=np.int64).ravel() for p in picked])
    _, first = np.unique(flat, return_index=True)
    return flat[np.sort(first)]


def reference_select(vts: Sequence[np.ndarray], rank: int) -> list[np.ndarray]:
    """The reference selector over a round: one :func:`reference_index_sel` per batch.

    Args:
        vts: per batch, a ``(m, B)`` ``Vt`` with ``m >= rank``.
        rank: rows to pick per batch.

    Returns:
        Per batch, the distinct selected rows (at most ``rank``).
    """
    return select_per_batch(reference_index_sel, vts, rank)


def select_per_batch(
    index_sel: Callable[..., Any], vts: Sequence[Any], rank: int
) -> list[np.ndarray]:
    """``index_sel(Vt, rank)`` per batch, as graft-pytorch's sample_selection calls it, then
    the caller's set() dedupe: per batch, the distinct rows (works for the package's
    ``index_sel`` on numpy or torch ``Vt`` and for :func:`reference_index_sel`)."""
    return [unique_rows(index_sel(vt, min(rank, vt.shape[1]))) for vt in vts]


def load_graft_pytorch(path: str | None) -> tuple[dict[str, ModuleType] | None, str]:
    """Import graft-pytorch's ``graft`` package from ``path`` only; returns (modules, note)."""
    if not path:
        return None, "no path given (--graft-pytorch PATH or GRAFT_PYTORCH_PATH)"
    folder = Path(path).resolve()
    if not (folder / "graft" / "decompositions.py").is_file():
        return None, f"{folder} holds no graft/decompositions.py"
    sys.path.insert(0, str(folder))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graft = importlib.import_module("graft")
            mods = {
                "graft": graft,
                "decompositions": importlib.import_module("graft.decompositions"),
                "genindices": importlib.import_module("graft.genindices"),
            }
    except Exception as exc:  # any import failure means "unavailable", with the reason
        return None, f"import failed: {type(exc).__name__}: {exc}"
    finally:
        sys.path.remove(str(folder))
    if not str(Path(graft.__file__ or "").resolve()).startswith(str(folder)):
        return None, f"'graft' resolved to {graft.__file__}, not under {folder}"
    notes = [f"graft-pytorch {getattr(graft, '__version__', '?')} from {folder}"]
    notes += [f"import warning: {w.message}" for w in caught]
    return mods, "; ".join(notes)
