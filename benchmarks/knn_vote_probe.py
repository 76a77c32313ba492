"""Two views of evidence for the ``knn`` filter: what each vote flags at GRAFT's first round.

Run from the repository root:

    .venv/bin/python benchmarks/knn_vote_probe.py --seeds 0 1 2 \
        > benchmarks/results/knn_vote_probe.md

For each cell of ``noise_bench.py`` (its per-trial recipe) and seed, one trial runs up to its
first GRAFT selection round, where the filter's forward pass is recorded (candidates, logits,
labels, embeddings) and the trial stops. On that pass each vote below flags candidates (before
the per-class cap of half a class); reported: share flagged, precision and recall against the
wrong labels (:func:`graft_hpo.data.training_truth`, never seen by selection), and the share of
the clean candidates flagged. Neighbours: the 10 nearest by cosine similarity of the embeddings,
among all candidates, float64.

- ``knn``: fewer than 2 of the 10 neighbours share the label (the filter; Bahri et al. 2020);
- ``knn & misfit``: and the head's predicted class is not the label;
- ``knn & chance``: and the head gives the label less than ``1 / C``;
- ``knn & plural=pred``: and the neighbours' plurality class is the head's predicted class
  (both views name the same other class);
- ``knn & 5 other``: and at least 5 of the 10 neighbours share one other class (one view, more
  evidence);
- ``cl``: confident learning's per-class thresholds (Northcutt et al. 2021): ``t_j`` the mean
  predicted probability of class ``j`` over the samples labelled ``j``; a sample is flagged when
  the class of highest probability among those at or above their threshold is not its label;
- ``knn & cl``: both;
- ``knn (logits)``: the ``knn`` vote with the logits as the embedding (Bahri et al.'s layer);
- ``knn & knn (inputs)``: and fewer than 2 of the 10 nearest neighbours by cosine similarity of
  the raw inputs share the label too (a second view the model did not shape: co-training's
  agreement of two feature sets, Blum and Mitchell 1998);
- ``knn & inputs < 3``, ``knn & inputs < 5``: the inputs' view spares a ``knn`` suspect only
  when at least 3 (5) of its 10 input neighbours share its label (a stronger veto).
"""

from __future__ import annotations

import argparse
import math
import sys
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
from graft_hpo._torch import gather_batch  # noqa: E402
from graft_hpo.data import load_data  # noqa: E402
from graft_hpo.selection import _noise  # noqa: E402

Json = dict[str, Any]
DEFAULT_CELLS = [
    "mnist_noise0",
    "mnist_noise0.2",
    "mnist_noise0.4",
    "digits_noise0",
    "digits_noise0.2",
    "digits_noise0.4",
    "hard_noise0",
    "hard",
]
VARIANTS = [
    "knn",
    "knn & misfit",
    "knn & chance",
    "knn & plural=pred",
    "knn & 5 other",
    "cl",
    "knn & cl",
    "knn (logits)",
    "knn & knn (inputs)",
    "knn & inputs < 3",
    "knn & inputs < 5",
]


def neighbours(embeds: torch.Tensor, k: int = _noise.KNN_K) -> torch.Tensor:
    """``(m, k)`` the ``k`` nearest other candidates by cosine similarity, float64."""
    feats = F.normalize(embeds.double(), dim=1)
    out = []
    for start in range(0, len(feats), 1024):
        sim = feats[start : start + 1024] @ feats.T
        rows = torch.arange(start, start + len(sim))
        sim[torch.arange(len(sim)), rows] = -math.inf
        out.append(sim.topk(k, dim=1).indices)
    return torch.cat(out)


def confident_learning(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Confident learning's off-diagonal of the confident joint (per-class thresholds)."""
    probs = logits.double().softmax(1)
    num_classes = probs.shape[1]
    thresholds = torch.full((num_classes,), math.inf, dtype=torch.float64)
    for c in labels.unique():
        thresholds[c] = probs[labels == c, c].mean()
    above = probs >= thresholds
    best = probs.masked_fill(~above, -1.0).argmax(1)
    return above.any(1) & (best != labels)


def _agree(feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (labels[neighbours(feats)] == labels[:, None]).sum(1)


def votes(
    logits: torch.Tensor, labels: torch.Tensor, embeds: torch.Tensor, inputs: torch.Tensor
) -> dict[str, Any]:
    """Every variant's ``(m,)`` bool flags on one round's pass (and the candidates' inputs)."""
    num_classes = logits.shape[1]
    near = neighbours(embeds)
    near_labels = labels[near]
    agree = (near_labels == labels[:, None]).sum(1)
    knn = agree < _noise.KNN_MIN_AGREE
    counts = F.one_hot(near_labels, num_classes).sum(1)
    plural = counts.argmax(1)
    pred = logits.argmax(1)
    misfit = pred != labels
    chance = logits.double().log_softmax(1).gather(1, labels[:, None]).squeeze(1) < -math.log(
        num_classes
    )
    other = counts.scatter(1, labels[:, None], 0).max(1).values >= 5
    cl = confident_learning(logits, labels)
    input_agree = _agree(inputs, labels)
    return {
        "knn": knn,
        "knn & misfit": knn & misfit,
        "knn & chance": knn & chance,
        "knn & plural=pred": knn & (plural == pred) & misfit,
        "knn & 5 other": knn & other,
        "cl": cl,
        "knn & cl": knn & cl,
        "knn (logits)": _agree(logits, labels) < _noise.KNN_MIN_AGREE,
        "knn & knn (inputs)": knn & (input_agree < _noise.KNN_MIN_AGREE),
        "knn & inputs < 3": knn & (input_agree < 3),
        "knn & inputs < 5": knn & (input_agree < 5),
        "_package": _noise.knn_outliers(embeds, labels),
        "_fit": float((~misfit).double().mean()),
    }


def probe(
    logits: torch.Tensor, labels: torch.Tensor, embeds: torch.Tensor, inputs: Any, wrong: Any
) -> Json:
    """Share flagged, precision, recall and clean share flagged of every variant."""
    flags = votes(logits, labels, embeds, inputs)
    row: Json = {
        "m": len(labels),
        "pool_wrong": float(wrong.double().mean()),
        "fit": flags["_fit"],
        "package_differs": float((flags["_package"] != flags["knn"]).double().mean()),
    }
    clean = max(1, int((~wrong).sum()))
    for name in VARIANTS:
        f = flags[name]
        hit = int((f & wrong).sum())
        row[name] = {
            "flagged": float(f.double().mean()),
            "precision": hit / max(1, int(f.sum())),
            "recall": hit / max(1, int(wrong.sum())),
            "clean_flagged": int((f & ~wrong).sum()) / clean,
        }
    return row


def _cell(row: Json, variant: str) -> str:
    v = row[variant]
    if row["pool_wrong"] == 0:
        return f"{100 * v['flagged']:.1f}%"
    return (
        f"{100 * v['flagged']:.1f}%: {v['precision']:.2f}, {v['recall']:.2f}"
        f" ({100 * v['clean_flagged']:.1f}%)"
    )


def _mean_row(rows: list[Json], cell: str) -> str:
    mine = [r for r in rows if r["cell"] == cell]
    parts = []
    for name in VARIANTS:
        mean = {
            key: sum(r[name][key] for r in mine) / len(mine)
            for key in ("flagged", "precision", "recall", "clean_flagged")
        }
        parts.append(_cell({"pool_wrong": mine[0]["pool_wrong"], name: mean}, name))
    return f"| {cell} | mean | | | " + " | ".join(parts) + " |"


def markdown(report: Json) -> str:
    rows = report["rows"]
    head = [
        "| cell | seed | candidates | head fits | " + " | ".join(VARIANTS) + " |",
        "|---|---|---|---|" + "---|" * len(VARIANTS),
    ]
    lines = [
        "# Two views of evidence for the knn filter",
        "",
        provenance(report, "knn_vote_probe.py"),
        "",
        "Cells: share of the first round's candidates flagged (before the per-class cap); on "
        "noisy cells precision, recall against the wrong labels and, in brackets, the share of "
        "the clean candidates flagged. `head fits`: share of the candidates whose label is the "
        "head's predicted class. The variants: the script's docstring. The package's "
        "`knn_outliers` differs from the float64 `knn` column on at most "
        f"{100 * max(r['package_differs'] for r in rows):.2f}% of a round's candidates.",
        "",
        "## Mean of the seeds",
        "",
        *head,
        *(_mean_row(rows, cell) for cell in dict.fromkeys(r["cell"] for r in rows)),
        "",
        "## Per seed",
        "",
        *head,
    ]
    for row in rows:
        cells = " | ".join(_cell(row, v) for v in VARIANTS)
        lines.append(
            f"| {row['cell']} | {row['seed']} | {row['m']} | {100 * row['fit']:.1f}% | {cells} |"
        )
    return "\n".join(lines)


def run_all(args: argparse.Namespace) -> Json:
    rows = []
    for cell, seed, config, (candidates, logits, labels, embeds) in recorded_rounds(args):
        wrong = _truth_hook(config).wrong[candidates]
        data = load_data(config.data, seed=config.train.seed).train_eval
        inputs = gather_batch(data, candidates)[0].flatten(1).float()
        row = {"cell": cell, "seed": seed, **probe(logits, labels, embeds, inputs, wrong)}
        rows.append(row)
        shown = (VARIANTS[0], VARIANTS[1], VARIANTS[-1])
        say(f"{cell} seed={seed}: " + " | ".join(_cell(row, v) for v in shown))
    return {"rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = probe_parser(__doc__ or "", DEFAULT_CELLS, [0])
    return probe_main(parser.parse_args(argv), run_all, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
