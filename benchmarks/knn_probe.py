"""The ``knn`` noise filter's vote on the selector's own embeddings: what it flags and its cost.

Run from the repository root:

    .venv/bin/python benchmarks/knn_probe.py > benchmarks/results/knn_probe.md

For each cell of ``noise_bench.py`` (its per-trial recipe) and seed, one trial runs up to its
first GRAFT selection round, where the filter's forward pass is recorded (candidates, labels,
embeddings) and the trial stops. On those embeddings the vote of
:func:`graft_hpo.selection._noise.knn_outliers` ("fewer than 2 of the 10 nearest neighbours
share the label", before the per-class cap) is computed with neighbours among all candidates
(float64, the brute-force reference), and among at most ``R`` reference candidates for each
``--references`` R. Reported per cell and variant: share of the candidates flagged, precision
and recall against the wrong labels (:func:`graft_hpo.data.training_truth`, never seen by
selection), the share whose flag differs from the reference's, and the seconds of one call on
one thread (median of 3).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._machine import provenance  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._noise import _truth_hook  # noqa: E402
from benchmarks._noise import probe_main  # noqa: E402
from benchmarks._noise import probe_parser  # noqa: E402
from benchmarks._noise import recorded_rounds  # noqa: E402
from graft_hpo.selection import _noise  # noqa: E402

Json = dict[str, Any]
DEFAULT_CELLS = [
    "digits_noise0",
    "digits_noise0.2",
    "digits_noise0.4",
    "mnist_noise0",
    "mnist_noise0.2",
    "mnist_noise0.4",
    "hard_noise0",
    "hard",
    "hard_noise0.2",
]


def reference_vote(embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The vote in float64 over every candidate, by a full sort (no chunks, no top-k)."""
    feats = F.normalize(embeds.double(), dim=1)
    sim = feats @ feats.T
    sim.fill_diagonal_(-torch.inf)
    near = sim.argsort(dim=1, descending=True, stable=True)[:, : _noise.KNN_K]
    return (labels[near] == labels[:, None]).sum(1) < _noise.KNN_MIN_AGREE


def _timed(embeds: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    times, out = [], torch.empty(0)
    for _ in range(3):
        start = time.perf_counter()
        out = _noise.knn_outliers(embeds, labels)
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def probe(
    embeds: torch.Tensor, labels: torch.Tensor, wrong: torch.Tensor, refs: list[int]
) -> Json:
    """Every variant's numbers on one round's candidates."""
    exact = reference_vote(embeds, labels)
    rows: Json = {"m": len(labels), "pool_wrong": float(wrong.float().mean())}
    saved = _noise.KNN_REFERENCES
    try:
        for r in [len(labels), *refs]:
            _noise.KNN_REFERENCES = r
            flags, seconds = _timed(embeds, labels)
            hit = int((flags & wrong).sum())
            rows[str(r) if r in refs else "all"] = {
                "flagged": float(flags.float().mean()),
                "precision": hit / max(1, int(flags.sum())),
                "recall": hit / max(1, int(wrong.sum())),
                "differs": float((flags != exact).float().mean()),
                "seconds": seconds,
            }
    finally:
        _noise.KNN_REFERENCES = saved
    return rows


def _cell(row: Json, variant: str) -> str:
    v = row.get(variant)
    if v is None:
        return ""
    quality = f": {v['precision']:.2f}, {v['recall']:.2f}" if row["pool_wrong"] > 0 else ""
    return f"{100 * v['flagged']:.1f}%{quality}; {100 * v['differs']:.1f}%; {v['seconds']:.3f} s"


def markdown(report: Json) -> str:
    variants = ["all", *(str(r) for r in report["args"]["references"])]
    lines = [
        "# The knn filter's vote, by reference-set size",
        "",
        provenance(report, "knn_probe.py"),
        "",
        "Cells: share of the first round's candidates flagged by the vote (before the per-class "
        "cap): precision, recall against the wrong labels; share whose flag differs from the "
        "float64 all-candidates reference; seconds of one call, one thread (median of 3). "
        "`all`: neighbours among all candidates (the filter up to 8,192 before this probe).",
        "",
        "| cell | seed | candidates | " + " | ".join(f"R = {v}" for v in variants) + " |",
        "|---|---|---|" + "---|" * len(variants),
    ]
    for row in report["rows"]:
        cells = " | ".join(_cell(row, v) for v in variants)
        lines.append(f"| {row['cell']} | {row['seed']} | {row['m']} | {cells} |")
    return "\n".join(lines)


def run_all(args: argparse.Namespace) -> Json:
    rows = []
    for cell, seed, config, (candidates, _, labels, embeds) in recorded_rounds(args):
        wrong = _truth_hook(config).wrong[candidates]
        row = {"cell": cell, "seed": seed, **probe(embeds, labels, wrong, args.references)}
        rows.append(row)
        say(f"{cell} seed={seed}: {_cell(row, 'all')} | {_cell(row, '2048')}")
    return {"rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = probe_parser(__doc__ or "", DEFAULT_CELLS, [0])
    parser.add_argument("--references", type=int, nargs="+", default=[4096, 2048, 1024, 512])
    return probe_main(parser.parse_args(argv), run_all, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
