"""Trial throughput of a sweep at 1, 2 and 4 concurrent trials on one machine.

Run from the repository root, on an otherwise quiet machine:

    .venv/bin/python benchmarks/throughput_bench.py                # 8 trials x 4 epochs each
    .venv/bin/python benchmarks/throughput_bench.py --trials 4 --epochs 2 --json   # smoke run

For each concurrency c (``--concurrency``, default 1 2 4) one sweep of the pipeline
(``--pipeline``, default ``digits``) runs through :func:`graft_hpo.run_sweep` on one local Ray
(``--cpus`` CPUs, default all): ``--trials`` trials of ``--epochs`` epochs,
``search.max_concurrent=c`` and ``resources.cpu=cpus/c``, so c trials share the machine (a
trial's torch uses ``max(1, int(cpu))`` threads). Every sweep uses the same sampler seed and,
unless ``--set search.sampler=...`` says otherwise, the random sampler: the i-th trial asked for
is then the same configuration at every concurrency, so every sweep does the same work (the
report checks that the sets of trial configurations match). A discarded 1-trial, 1-epoch sweep
first pays the one-off costs (Ray's start, the store's migrations, cold imports).

Per concurrency: the sweep's wall time (around ``run_sweep``: validation, Tune's set-up, every
trial's process start, training and logging, the front), finished trials per minute of that
wall time, the mean trial run time (MLflow run start to end, inside the trial process) and the
mean measured training time (``duration_s``, inside codecarbon), the total energy (kWh, the sum
of codecarbon's per-trial measurements: process-mode estimates here, see ENV_NOTES.md) and the
speed-up, wall(c=1) / wall(c). Progress goes to stderr; the Markdown table goes to stdout,
then, with ``--json``, one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
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
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._stats import mean  # noqa: E402
from benchmarks._stats import ratio  # noqa: E402
from benchmarks._sweeps import open_store  # noqa: E402  (sets Ray/MLflow/codecarbon env)
from benchmarks._sweeps import stop_ray  # noqa: E402
from benchmarks._sweeps import timed_sweep  # noqa: E402
from benchmarks._sweeps import warm_up  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._tables import num  # noqa: E402
from graft_hpo.config import load_pipeline  # noqa: E402
from graft_hpo.space import load_space  # noqa: E402

Json = dict[str, Any]

CONCURRENCY = (1, 2, 4)
TRIAL_METRICS = ("val_acc", "co2_kg", "energy_kwh", "duration_s")


def cpu_per_trial(cpus: float, concurrency: int) -> float:
    """Each of ``concurrency`` trials gets an equal share of ``cpus`` (fractions allowed)."""
    return round(cpus / concurrency, 4)


def sweep_overrides(args: argparse.Namespace, concurrency: int) -> list[str]:
    return [
        f"train.epochs={args.epochs}",
        "train.device=cpu",
        "search.sampler=random",  # same i-th configuration at every concurrency
        f"search.seed={args.seed}",
        "search.scheduler=null",  # no trial stopped early: every sweep does all the work
        f"search.max_concurrent={concurrency}",
        f"resources.cpu={cpu_per_trial(args.cpus, concurrency)}",
        "resources.gpu=0",
        f"tracking.experiment=throughput-c{concurrency}",
        *args.set,
    ]


def read_trials(uri: str, experiment: str, sweep_id: str) -> list[Json]:
    """The sweep's trial runs: status, params, final metrics, run start/end (ms)."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs(
        [exp.experiment_id],
        f"tags.sweep_id = '{sweep_id}' and tags.`graft_hpo.role` = 'trial'",
        max_results=10_000,
    )
    return [
        {
            "run_id": r.info.run_id,
            "status": r.info.status,
            "start_ms": r.info.start_time,
            "end_ms": r.info.end_time,
            "node": r.data.tags.get("node"),
            "params": dict(r.data.params),
            **{k: r.data.metrics.get(k) for k in TRIAL_METRICS},
        }
        for r in runs
    ]


def summarise(concurrency: int, cpu: float, wall_s: float, trials: list[Json]) -> Json:
    """One row of the table from a sweep's wall time and its trial runs."""
    finished = [t for t in trials if t["status"] == "FINISHED"]
    spans = [
        (t["end_ms"] - t["start_ms"]) / 1000
        for t in finished
        if t["start_ms"] is not None and t["end_ms"] is not None
    ]
    return {
        "concurrency": concurrency,
        "cpu_per_trial": cpu,
        "wall_s": wall_s,
        "trials": len(trials),
        "finished": len(finished),
        "trials_per_min": 60 * len(finished) / wall_s if wall_s > 0 else None,
        "mean_trial_run_s": mean(spans, None),
        "mean_train_s": mean(
            [t["duration_s"] for t in finished if t["duration_s"] is not None], None
        ),
        "energy_kwh": sum(t["energy_kwh"] or 0.0 for t in trials),
        "co2_kg": sum(t["co2_kg"] or 0.0 for t in trials),
    }


def add_speedups(rows: list[Json]) -> None:
    """``speedup``: the wall time of the c=1 sweep (else the lowest c) over each row's."""
    base = min(rows, key=lambda r: r["concurrency"])
    for row in rows:
        row["speedup_vs"] = base["concurrency"]
        row["speedup"] = ratio(base["wall_s"], row["wall_s"])


def same_work(trials_by_c: dict[int, list[Json]], searched: tuple[str, ...]) -> bool:
    """True when every sweep trained the same multiset of configurations.

    Only the ``searched`` params count: the logged config also holds what differs by design
    (``search.max_concurrent``, ``resources.cpu``, the experiment).
    """
    keys = [
        sorted(json.dumps({k: t["params"].get(k) for k in searched}) for t in trials)
        for trials in trials_by_c.values()
    ]
    return all(k == keys[0] for k in keys)


def one_sweep(args: argparse.Namespace, concurrency: int, uri: str, stamp: str) -> Json:
    overrides = sweep_overrides(args, concurrency)
    config = load_pipeline(args.pipeline, overrides=overrides)  # bad input: fail before timing
    folder, tag = f"c{concurrency}-{stamp}", f"c={concurrency}"
    sweep = timed_sweep(args, overrides, uri=uri, folder=folder, tag=tag)
    result = sweep.result
    trials = read_trials(uri, result.experiment, result.sweep_id)
    row = summarise(concurrency, config.resources.cpu, sweep.wall_s, trials)
    row.update(
        sweep_id=result.sweep_id,
        experiment=result.experiment,
        load_avg_1min=sweep.load_avg_1min,
        trial_runs=trials,
    )
    return row


def run_all(args: argparse.Namespace) -> Json:
    # the store's migrations and experiments outside the clock
    experiments = [f"throughput-c{c}" for c in args.concurrency]
    uri, stamp = open_store(args.out, experiments, num_cpus=int(args.cpus))
    if args.warmup:
        overrides = sweep_overrides(args, 1)
        warm_up(args, uri, stamp, overrides=overrides, experiment="throughput-warmup")
    rows = []
    for c in args.concurrency:
        rows.append(one_sweep(args, c, uri, stamp))
        r = rows[-1]
        say(f"[c={c}] {r['finished']}/{r['trials']} trials in {r['wall_s']:.1f}s")
    stop_ray()
    add_speedups(rows)
    space = load_pipeline(args.pipeline, overrides=sweep_overrides(args, 1)).search.space
    searched = load_space(space).names if space is not None else ()
    same = same_work({r["concurrency"]: r["trial_runs"] for r in rows}, searched)
    for r in rows:  # the report keeps the searched params only, not the whole config
        for t in r["trial_runs"]:
            t["params"] = {k: v for k, v in t["params"].items() if k in searched}
    return {
        "rows": rows,
        "same_work": same,
        "tracking_uri": uri,
    }


def markdown(report: Json) -> str:
    m = report["machine"]
    a = report["args"]
    load = num(m["load_avg_1min_at_start"], ".2f", missing="n/a")
    lines = [
        f"Throughput of `{a['pipeline']}` sweeps: {a['trials']} trials x {a['epochs']} epochs, "
        f"seed {a['seed']}, on {m['cpu']} ({m['logical_cpus']} logical CPUs, Ray given "
        f"{a['cpus']:g}); load average at start {load}.",
        "",
        *head(
            "concurrent trials | CPU per trial | wall s | trials/min | mean trial run s "
            "| mean train s | energy Wh | speed-up vs 1",
            rule="---:",
        ),
    ]
    formats = {"trials_per_min": ".2f", "mean_trial_run_s": ".1f", "mean_train_s": ".1f"}
    formats["speedup"] = ".2f"
    for r in report["rows"]:
        cell = {k: num(r[k], f, missing="n/a") for k, f in formats.items()}
        lines.append(
            f"| {r['concurrency']} | {r['cpu_per_trial']:g} | {r['wall_s']:.1f} "
            f"| {cell['trials_per_min']} | {cell['mean_trial_run_s']} | {cell['mean_train_s']} "
            f"| {1000 * r['energy_kwh']:.3f} | {cell['speedup']} |"
        )
    unfinished = [r for r in report["rows"] if r["finished"] != r["trials"]]
    lines.append("")
    if not report["same_work"]:
        lines.append("Note: the sweeps did not train the same set of configurations.")
    for r in unfinished:
        lines.append(f"Note: c={r['concurrency']}: only {r['finished']}/{r['trials']} finished.")
    lines.append(
        "wall s: around `run_sweep`; trials/min: finished trials per minute of it; trial run: "
        "MLflow run start to end; train: codecarbon's `duration_s`; energy: sum over trials."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--pipeline", default="digits", help="bundled name or YAML path")
    parser.add_argument("--trials", type=positive_int, default=8, help="trials per sweep")
    parser.add_argument(
        "--epochs", type=positive_int, default=4, help="train.epochs of every trial"
    )
    parser.add_argument("--seed", type=int, default=0, help="search.seed of every sweep")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=list(CONCURRENCY), help="trials at once"
    )
    parser.add_argument(
        "--cpus", type=float, default=float(os.cpu_count() or 1), help="CPUs Ray may use"
    )
    add_overrides(parser, "every sweep")
    parser.add_argument(
        "--no-warmup", dest="warmup", action="store_false", help="skip the warm-up sweep"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_out" / "throughput")
    add_json_line(parser)
    args = parser.parse_args(argv)
    if args.trials < 1 or args.epochs < 1 or min(args.concurrency) < 1 or args.cpus < 1:
        parser.error("--trials, --epochs, --concurrency and --cpus must be >= 1")
    args.out = args.out.resolve()
    return print_report(args, run_report(args, run_all), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
