"""``selection.dedup`` on the selector's own embeddings: what each threshold leaves out.

Run from the repository root:

    .venv/bin/python benchmarks/dedup_probe.py > benchmarks/results/dedup_probe.md

For each cell of ``noise_bench.py`` (its per-trial recipe, the ``knn`` filter; ``--arm
graft_sweep_knn``: the sweep's recipe, whose proxy ranks the whole training split) and seed, one
trial runs up to its first GRAFT selection round, where the filter's forward pass is recorded
(candidates, logits, labels, embeddings) and the trial stops. On those, for every threshold
``tau`` of ``--taus``, :func:`graft_hpo.selection._noise.split_suspects` runs as the selector
would (``knn``, then :func:`~graft_hpo.selection._noise.near_duplicates` of the kept ones).
Reported: the share of the knn-kept candidates that dedup leaves out and its seconds (one
thread, best of 3); on ``synthetic_hard`` also, against the data's truth (never seen by
selection): a *group* is an original with its jittered copies among the kept candidates
(linked by raw-pixel distance under a fifth of the mode's median, a gap of 20-fold on this data),
the *surplus* is every member of a group beyond one; ``found``: the share of the surplus left
out; ``lost``: groups (singletons included) left out entirely, as a share of the groups, i.e.
distinct samples the subset can no longer hold; ``precision``: left-out samples whose group
keeps a member.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._machine import provenance  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._noise import copy_groups  # noqa: E402
from benchmarks._noise import probe_main  # noqa: E402
from benchmarks._noise import probe_parser  # noqa: E402
from benchmarks._noise import recorded_rounds  # noqa: E402
from graft_hpo.data import training_truth  # noqa: E402
from graft_hpo.selection._noise import split_suspects  # noqa: E402

Json = dict[str, Any]
DEFAULT_CELLS = ["hard_noise0", "hard", "digits_noise0", "mnist_noise0"]
DEFAULT_TAUS = [0.95, 0.97, 0.98, 0.99, 0.995, 0.998]


def _quality(kept: torch.Tensor, dropped: torch.Tensor, group: torch.Tensor) -> Json:
    seen = torch.cat([kept, dropped])
    ids, sizes = group[seen].unique(return_counts=True)
    alive = set(group[kept].tolist())
    surplus = int((sizes - 1).sum())
    found = sum(1 for i in dropped.tolist() if int(group[i]) in alive)  # its group keeps one
    lost = sum(1 for g in ids.tolist() if g not in alive)
    return {
        "pairs_share": surplus / max(1, len(seen)),
        "found": found / max(1, surplus),
        "lost": lost / max(1, len(ids)),
        "precision": found / max(1, len(dropped)),
    }


def probe(config: Any, round_: tuple[torch.Tensor, ...], taus: list[float]) -> Json:
    candidates, logits, labels, embeds = round_
    knn_times, base = [], candidates
    for _ in range(3):
        start = time.perf_counter()
        base, _ = split_suspects(candidates, logits, labels, "knn", embeds)
        knn_times.append(time.perf_counter() - start)
    group = copy_groups(config)
    row: Json = {"m": len(candidates), "knn_kept": len(base), "knn_s": min(knn_times)}
    for tau in taus:
        times, kept = [], base
        for _ in range(3):
            start = time.perf_counter()
            kept, _ = split_suspects(candidates, logits, labels, "knn", embeds, tau)
            times.append(time.perf_counter() - start)
        dropped = base[~torch.isin(base, kept)]
        cell: Json = {"dropped": len(dropped) / len(base), "seconds": min(times)}
        if group is not None:
            cell.update(_quality(kept, dropped, group))
        row[str(tau)] = cell
    if group is not None:
        truth = training_truth(config.data, seed=config.train.seed)
        row["copies"] = float(truth.duplicate[base].float().mean())  # type: ignore[index]
    return row


def _cell(row: Json, tau: float) -> str:
    v = row[str(tau)]
    text = f"{100 * v['dropped']:.1f}%"
    if "found" in v:
        text += f": {100 * v['found']:.0f}% / {100 * v['lost']:.1f}% / {v['precision']:.2f}"
    return text


def markdown(report: Json) -> str:
    taus = report["args"]["taus"]
    lines = [
        "# selection.dedup's threshold on the first round's embeddings",
        "",
        provenance(report, "dedup_probe.py"),
        "",
        "Cells: share of the knn-kept candidates that dedup leaves out; on synthetic_hard then "
        "surplus found / groups lost / precision (module docstring). `surplus`: members of "
        "copy groups beyond one, as a share of the kept candidates. `knn s`: seconds of the "
        "filter without dedup; `+ dedup s`: with dedup at the last threshold (one thread, "
        "best of 3).",
        "",
        "| cell | seed | candidates | kept by knn | surplus | "
        + " | ".join(f"tau = {t}" for t in taus)
        + " | knn s | + dedup s |",
        "|---|---|---|---|---|" + "---|" * len(taus) + "---|---|",
    ]
    for row in report["rows"]:
        cells = " | ".join(_cell(row, t) for t in taus)
        surplus = row[str(taus[0])].get("pairs_share")
        share = f"{100 * surplus:.1f}%" if surplus is not None else "-"
        lines.append(
            f"| {row['cell']} | {row['seed']} | {row['m']} | {row['knn_kept']} | {share} | "
            f"{cells} | {row['knn_s']:.3f} | {row[str(taus[-1])]['seconds']:.3f} |"
        )
    return "\n".join(lines)


def run_all(args: argparse.Namespace) -> Json:
    rows = []
    for cell, seed, config, round_ in recorded_rounds(args):
        row = {"cell": cell, "seed": seed, **probe(config, round_, args.taus)}
        rows.append(row)
        say(f"{cell} seed={seed}: " + " | ".join(_cell(row, t) for t in args.taus))
    return {"rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = probe_parser(__doc__ or "", DEFAULT_CELLS, [0, 1, 2])
    parser.add_argument("--taus", type=float, nargs="+", default=DEFAULT_TAUS)
    parser.add_argument(
        "--arm",
        choices=["graft_knn", "graft_sweep_knn"],
        default="graft_knn",
        help="whose first round: a trial's (per-trial recipe) or the sweep's ranking (proxy)",
    )
    return probe_main(parser.parse_args(argv), run_all, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
