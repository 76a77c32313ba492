"""GRAFT under label noise: clean test accuracy and what the subsets hold, against the controls.

Run from the repository root:

    .venv/bin/python benchmarks/noise_bench.py --json benchmarks/results/noise.json \\
        > benchmarks/results/noise.md

Each *cell* is a data set with one setting of its properties: ``synthetic_hard`` with its
label noise, duplicates and imbalance each on and off (scaled to ``n=8000`` so the grid fits
a 2-core machine; ``--hard-n 20000`` is the set's default), and MNIST-5k and digits at 0, 20
and 40% symmetric noise (``data.label_noise``). Every cell runs the digits pipeline's
per-trial recipe (``pipelines/digits.yaml``: 20 epochs, 2 warm-up epochs, re-selection every
9, embedding features, stratified batches, threshold 1.0) except MNIST-5k, which takes its
own pipeline with per-trial selection (warm start 1, one selection, as ``train_bench.py``).

Arms (``--arms``), at every budget unless said otherwise: ``graft`` (``noise_filter=chance``,
the default until ``knn`` measured better), ``graft_misfit`` and ``graft_knn`` (``knn``: the
default now), ``graft_off``
(``noise_filter=none``: GRAFT before the fix), ``random``,
``infobatch`` (its own prune ratio 0.5, once), ``full`` (once); ``graft_sweep``,
``graft_sweep_off``, ``graft_sweep_misfit``, ``graft_sweep_knn`` and ``random_sweep``: the
sweep's recipe (``scope=sweep``: one ranking by a
2-epoch proxy, no warm start, one subset for the whole trial; the random control draws once).
The metric is the clean test split's accuracy (``test_acc``); validation is as noisy as
training. For the GRAFT and random arms, the first selection round's composition is measured
against :func:`graft_hpo.data.training_truth` (never seen by training or selection): share of
wrong labels, share of near-duplicates, modes covered (``synthetic_hard`` only).

Trials run in ``--jobs`` processes of one torch thread each; seeds are the outer loop and the
runs of a seed go in a seeded random order. Progress goes to stderr, the Markdown report to
stdout; ``--json`` writes every run's numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._machine import new_report  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._machine import write_json  # noqa: E402
from benchmarks._noise import ARMS  # noqa: E402
from benchmarks._noise import CELLS  # noqa: E402
from benchmarks._noise import arm_fractions  # noqa: E402
from benchmarks._noise import one_run  # noqa: E402
from benchmarks._noise_report import goals  # noqa: E402
from benchmarks._noise_report import markdown  # noqa: E402
from benchmarks._noise_report import summarise  # noqa: E402

Json = dict[str, Any]

DEFAULT_ARMS = ["graft", "graft_misfit", "graft_knn", "graft_off", "random", "infobatch", "full"]
SWEEP_ARMS = ["graft_sweep", "graft_sweep_misfit", "graft_sweep_off", "random_sweep"]


def _init_worker() -> None:
    torch.set_num_threads(1)
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")


def plan(args: argparse.Namespace) -> list[tuple[int, str, str, float]]:
    """Every ``(seed, cell, arm, fraction)`` to run: seeds outermost, shuffled within a seed."""
    tasks = []
    for seed in args.seeds:
        mine = [
            (seed, cell, arm, f)
            for cell in args.cells
            for arm in args.arms
            for f in arm_fractions(arm, args.fractions, args.sweep_fractions)
        ]
        random.Random(seed).shuffle(mine)
        tasks += mine
    return tasks


def run_all(args: argparse.Namespace) -> Json:
    tasks = plan(args)
    runs: list[Json] = []
    common = {"epochs": args.epochs, "hard_n": args.hard_n, "extra": list(args.set)}
    with ProcessPoolExecutor(
        max_workers=args.jobs, mp_context=get_context("spawn"), initializer=_init_worker
    ) as pool:
        futures = [
            pool.submit(one_run, cell, arm, f, seed, **common) for seed, cell, arm, f in tasks
        ]
        for (seed, cell, arm, f), future in zip(tasks, futures, strict=True):
            run = future.result()
            runs.append(run)
            if args.json:  # so far: an interrupted grid still leaves its finished runs
                write_json(args.json.with_suffix(".partial.json"), {"runs": runs})
            m = run["metrics"]
            say(
                f"[{len(runs)}/{len(tasks)}] {cell} seed={seed} {arm} f={f:g}: "
                f"test={100 * m.get('test_acc', math.nan):.1f}% "
                f"wrong={run.get('composition', {}).get('wrong', math.nan):.3f} "
                f"t={m.get('duration_s', math.nan):.1f}s {run['status']}"
            )
    return {"runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    parser.add_argument(
        "--sweep-fractions", type=float, nargs="+", default=[0.2], help="of the sweep arms"
    )
    parser.add_argument("--sweep", action="store_true", help="add the sweep-recipe arms")
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="default: the pipeline's"
    )
    parser.add_argument("--hard-n", type=int, default=8000, help="synthetic_hard's pool size")
    parser.add_argument("--jobs", type=positive_int, default=1, help="processes, one thread each")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra override"
    )
    parser.add_argument("--quick", action="store_true", help="seed 0, f=0.2, digits cells")
    parser.add_argument("--json", type=Path, default=None, help="write every run's numbers")
    parser.add_argument(
        "--per-run", action="store_true", help="also list every run's accuracy and seconds"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        default=None,
        help="run nothing: report the runs of these --json files (or their .partial.json)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.fractions = [0], [0.2]
        args.cells = [c for c in args.cells if c.startswith("digits")] or args.cells
    args.arms = args.arms or DEFAULT_ARMS + (SWEEP_ARMS if args.sweep else [])
    if args.from_json:
        report = {**new_report(args), "wall_s": 0.0, "runs": []}
        report["args"]["from_json"] = [str(path) for path in args.from_json]
        for path in args.from_json:
            report["runs"] += json.loads(path.read_text())["runs"]
            report["wall_s"] += json.loads(path.read_text()).get("wall_s", 0.0)
    else:
        report = run_report(args, run_all)
    report["summary"] = summarise(report["runs"])
    report["goals"] = goals(report["summary"])
    print(markdown(report, per_run=args.per_run))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
