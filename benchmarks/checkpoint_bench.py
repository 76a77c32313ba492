"""What trial checkpoints cost: the bundled pipelines' sweeps with and without them, side by side.

Each pipeline is swept once per setting of ``train.checkpoint_every``, with the same seed, so
the same trials, and its own recipe (search space, scheduler): ``auto`` (the default, null: as
often as costs at most 2% of the trial), ``1`` (every epoch) and ``0`` (never). Every trial logs
``checkpoint_s``, the seconds it spent writing checkpoints and reporting them to Ray (which
copies them into the sweep's storage before its report returns, and then waits for the driver
to take the report): an upper bound of the cost, against its ``duration_s``. Each trial's
``duration_s`` is also paired with the same configuration's in the sweep without checkpoints
(same epochs): the cost end to end, within the machine's noise.

    .venv/bin/python benchmarks/checkpoint_bench.py --json > benchmarks/results/checkpoint.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._cli import add_json_line  # noqa: E402
from benchmarks._cli import add_overrides  # noqa: E402
from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._machine import print_report  # noqa: E402
from benchmarks._machine import provenance  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._sweeps import open_store  # noqa: E402  (sets Ray/MLflow/codecarbon env)
from benchmarks._sweeps import timed_sweep  # noqa: E402
from benchmarks._sweeps import warm_up  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._tables import num  # noqa: E402
from graft_hpo.tracking import TAG_ROLE  # noqa: E402
from graft_hpo.tracking import query_runs  # noqa: E402

Json = dict[str, Any]
GOAL_SHARE = 0.02  # issue 23: checkpointing costs at most 2% of a trial's wall time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", nargs="+", default=["digits", "mnist"])
    parser.add_argument("--trials", type=positive_int, default=6, help="trials per sweep")
    parser.add_argument(
        "--every", nargs="+", default=["auto", "1", "0"], help="settings; the last is the base"
    )
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
        warm_up(args, uri, stamp, overrides=[*args.set, "search.scheduler=null"])
        swept = []
        for every in args.every:
            tag = f"{pipeline}-every-{every}"
            value = "null" if every == "auto" else every
            overrides = [
                *args.set,
                f"train.checkpoint_every={value}",
                "tracking.experiment=checkpoint-bench",
            ]
            sweep = timed_sweep(args, overrides, uri=uri, folder=f"{tag}-{stamp}", tag=tag)
            trials = _trials(uri, sweep.result.sweep_id)
            sizes = [p.stat().st_size for p in Path(sweep.result.sweep_dir).rglob("trial.pt")]
            swept.append((every, sweep.wall_s, trials, sizes))
        base = swept[-1][2]
        rows += [_row(pipeline, e, wall, trials, sizes, base) for e, wall, trials, sizes in swept]
    return {"rows": rows}


def _trials(uri: str, sweep_id: str) -> list[Json]:
    runs = query_runs(uri, "checkpoint-bench", sweep_id=sweep_id)
    return [
        {
            **{k: r.metrics.get(k) for k in ("checkpoint_s", "duration_s", "epochs_completed")},
            "config": tuple(sorted(kv for kv in r.params.items() if kv[0] != _KNOB)),
        }
        for r in runs
        if r.tags.get(TAG_ROLE) == "trial" and r.status == "FINISHED"
    ]


_KNOB = "train.checkpoint_every"


def _paired_ratios(trials: list[Json], base: list[Json]) -> list[float]:
    """Each trial's duration over the same configuration's in ``base`` (same epochs)."""
    by_config = {(t["config"], t["epochs_completed"]): t["duration_s"] for t in base}
    return [
        t["duration_s"] / by_config[(t["config"], t["epochs_completed"])]
        for t in trials
        if by_config.get((t["config"], t["epochs_completed"])) and t["duration_s"]
    ]


def _row(
    pipeline: str,
    every: str,
    wall_s: float,
    trials: list[Json],
    sizes: list[int],
    base: list[Json],
) -> Json:
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
        "paired_trials": len(ratios := _paired_ratios(trials, base)),
        "median_duration_ratio": _median(ratios),
        "checkpoint_files_kept": len(sizes),
        "median_checkpoint_bytes": _median(sizes),
    }


def _median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def markdown(report: Json) -> str:
    lines = [
        "# Trial checkpoints: their cost inside the trials, and the sweeps side by side",
        "",
        f"{provenance(report, 'checkpoint_bench.py')} Goal (issue 23): checkpointing at most "
        f"{GOAL_SHARE:.0%} of a trial's wall time.",
        "",
        *head(
            "pipeline | checkpoint_every | trials | median epochs | median trial s | "
            "median checkpoint_s | median share | max share | paired trials | median "
            "duration / none | median file KB | sweep wall s"
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
            str(r["paired_trials"]),
            num(r["median_duration_ratio"], ".3f"),
            num(r["median_checkpoint_bytes"], ".0f", 1 / 1024),
            num(r["sweep_wall_s"], ".1f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
