"""What trial checkpoints cost: the bundled pipelines' sweeps with and without them, side by side.

Each pipeline is swept twice with the same seed, the same trials and its own recipe (search
space, scheduler): with ``train.checkpoint_every=N`` (default 1: after every epoch, and at every
rung) and with ``0`` (none). Every trial logs ``checkpoint_s``, the seconds it spent writing
checkpoints and handing them to Ray (which copies them into the sweep's storage before its report
returns): the cost measured inside the trial, against its ``duration_s``. The sweeps' wall times
are reported beside it, but on a shared machine they move by more than the cost measured.

    .venv/bin/python benchmarks/checkpoint_bench.py --json > benchmarks/results/checkpoint.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks._cli import add_json_line
from benchmarks._cli import add_overrides
from benchmarks._machine import ROOT
from benchmarks._machine import print_report
from benchmarks._machine import run_report
from benchmarks._sweeps import open_store
from benchmarks._sweeps import timed_sweep
from benchmarks._sweeps import warm_up
from benchmarks._tables import head
from benchmarks._tables import num
from graft_hpo.tracking import TAG_ROLE
from graft_hpo.tracking import query_runs

Json = dict[str, Any]
GOAL_SHARE = 0.02  # issue 23: checkpointing costs at most 2% of a trial's wall time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", nargs="+", default=["digits", "mnist"])
    parser.add_argument("--trials", type=int, default=6, help="trials per sweep")
    parser.add_argument("--every", type=int, default=1, help="train.checkpoint_every to price")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_out" / "checkpoint")
    add_overrides(parser, "every sweep")
    add_json_line(parser)
    args = parser.parse_args(argv)
    return print_report(args, run_report(args, _run_all), markdown)


def _run_all(args: argparse.Namespace) -> Json:
    uri, stamp = open_store(args.out, ["checkpoint-bench", "hpo-bench-warmup"])
    rows = []
    for pipeline in args.pipelines:
        args.pipeline = pipeline
        warm_up(args, uri, stamp, overrides=list(args.set))
        for every in (args.every, 0):
            tag = f"{pipeline}-every{every}"
            overrides = [
                *args.set,
                f"train.checkpoint_every={every}",
                "tracking.experiment=checkpoint-bench",
            ]
            sweep = timed_sweep(args, overrides, uri=uri, folder=f"{tag}-{stamp}", tag=tag)
            trials = _trials(uri, sweep.result.sweep_id)
            sizes = [p.stat().st_size for p in Path(sweep.result.sweep_dir).rglob("trial.pt")]
            rows.append(_row(pipeline, every, sweep.wall_s, trials, sizes))
    return {"rows": rows}


def _trials(uri: str, sweep_id: str) -> list[Json]:
    runs = query_runs(uri, "checkpoint-bench", sweep_id=sweep_id)
    return [
        {k: r.metrics.get(k) for k in ("checkpoint_s", "duration_s", "epochs_completed")}
        for r in runs
        if r.tags.get(TAG_ROLE) == "trial" and r.status == "FINISHED"
    ]


def _row(pipeline: str, every: int, wall_s: float, trials: list[Json], sizes: list[int]) -> Json:
    shares = [
        t["checkpoint_s"] / t["duration_s"]
        for t in trials
        if t["checkpoint_s"] is not None and t["duration_s"]
    ]
    return {
        "pipeline": pipeline,
        "checkpoint_every": every,
        "trials": len(trials),
        "sweep_wall_s": wall_s,
        "median_duration_s": _median([t["duration_s"] for t in trials]),
        "median_epochs": _median([t["epochs_completed"] for t in trials]),
        "median_checkpoint_s": _median([t["checkpoint_s"] for t in trials]),
        "median_share": _median(shares),
        "max_share": max(shares, default=None),
        "checkpoint_files_kept": len(sizes),
        "median_checkpoint_bytes": _median(sizes),
    }


def _median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def markdown(report: Json) -> str:
    machine = report["machine"]
    load = num(machine["load_avg_1min_at_start"], ".1f")
    command = " ".join(["benchmarks/checkpoint_bench.py", *sys.argv[1:]])
    lines = [
        "# Trial checkpoints: their cost inside the trials, and the sweeps side by side",
        "",
        f"Machine: {machine['description']}, load average {load} at the start. Command: "
        f"`{command}`; wall time {report['wall_s']:.0f} s. Goal (issue 23): checkpointing at "
        f"most {GOAL_SHARE:.0%} of a trial's wall time.",
        "",
        *head(
            "pipeline | checkpoint_every | trials | median epochs | median trial s | "
            "median checkpoint_s | median share | max share | files kept | median file KB | "
            "sweep wall s"
        ),
    ]
    for r in report["rows"]:
        cells = [
            r["pipeline"],
            str(r["checkpoint_every"]),
            str(r["trials"]),
            num(r["median_epochs"], ".0f"),
            num(r["median_duration_s"], ".2f"),
            num(r["median_checkpoint_s"], ".3f"),
            num(r["median_share"], ".2%"),
            num(r["max_share"], ".2%"),
            str(r["checkpoint_files_kept"]),
            num(r["median_checkpoint_bytes"], ".0f", 1 / 1024),
            num(r["sweep_wall_s"], ".1f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
