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
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray binds 127.0.0.1
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local Ray on loopback: no token
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")

from benchmarks._machine import load_avg  # noqa: E402
from benchmarks._machine import repo_relative  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from graft_hpo.config import load_pipeline  # noqa: E402
from graft_hpo.sweep import load_space  # noqa: E402
from graft_hpo.sweep import run_sweep  # noqa: E402
from graft_hpo.tracking import ensure_experiment  # noqa: E402

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


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


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
        "mean_trial_run_s": _mean(spans),
        "mean_train_s": _mean([t["duration_s"] for t in finished if t["duration_s"] is not None]),
        "energy_kwh": sum(t["energy_kwh"] or 0.0 for t in trials),
        "co2_kg": sum(t["co2_kg"] or 0.0 for t in trials),
    }


def add_speedups(rows: list[Json]) -> None:
    """``speedup``: the wall time of the c=1 sweep (else the lowest c) over each row's."""
    base = min(rows, key=lambda r: r["concurrency"])
    for row in rows:
        row["speedup_vs"] = base["concurrency"]
        row["speedup"] = base["wall_s"] / row["wall_s"] if row["wall_s"] > 0 else None


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


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def one_sweep(args: argparse.Namespace, concurrency: int, uri: str, stamp: str) -> Json:
    overrides = sweep_overrides(args, concurrency)
    config = load_pipeline(args.pipeline, overrides=overrides)  # bad input: fail before timing
    load_start = load_avg()
    start = time.perf_counter()
    result = run_sweep(
        args.pipeline,
        trials=args.trials,
        overrides=overrides,
        tracking_uri=uri,
        sweep_dir=args.out / "sweeps" / f"c{concurrency}-{stamp}",
        printer=lambda line: _say(f"[c={concurrency}] {line}"),
    )
    wall = time.perf_counter() - start
    trials = read_trials(uri, result.experiment, result.sweep_id)
    row = summarise(concurrency, config.resources.cpu, wall, trials)
    row.update(
        sweep_id=result.sweep_id,
        experiment=result.experiment,
        load_avg_1min=[load_start, load_avg()],
        trial_runs=trials,
    )
    return row


def warm_up(args: argparse.Namespace, uri: str, stamp: str) -> None:
    _say("[warm-up] a discarded 1-trial, 1-epoch sweep")
    overrides = [
        *sweep_overrides(args, 1),
        "train.epochs=1",
        "tracking.experiment=throughput-warmup",
    ]
    run_sweep(
        args.pipeline,
        trials=1,
        overrides=overrides,
        tracking_uri=uri,
        sweep_dir=args.out / "sweeps" / f"warmup-{stamp}",
        printer=lambda line: _say(f"[warm-up] {line}"),
    )


def run_all(args: argparse.Namespace) -> Json:
    from graft_hpo.sweep import init_ray  # the sweeps' own Ray settings

    args.out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(args.out / 'mlruns' / 'mlflow.db').resolve()}"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    _say(f"starting Ray with {args.cpus:g} CPUs; MLflow store {uri}")
    init_ray(None, num_cpus=int(args.cpus))
    for c in args.concurrency:  # the store's migrations and experiments outside the clock
        ensure_experiment(uri, f"throughput-c{c}")
    if args.warmup:
        warm_up(args, uri, stamp)
    rows = []
    for c in args.concurrency:
        rows.append(one_sweep(args, c, uri, stamp))
        r = rows[-1]
        _say(f"[c={c}] {r['finished']}/{r['trials']} trials in {r['wall_s']:.1f}s")
    import ray

    ray.shutdown()
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


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(report: Json) -> str:
    m = report["machine"]
    a = report["args"]
    lines = [
        f"Throughput of `{a['pipeline']}` sweeps: {a['trials']} trials x {a['epochs']} epochs, "
        f"seed {a['seed']}, on {m['cpu']} ({m['logical_cpus']} logical CPUs, Ray given "
        f"{a['cpus']:g}); load average at start {_fmt(m['load_avg_1min_at_start'], '.2f')}.",
        "",
        "| concurrent trials | CPU per trial | wall s | trials/min | mean trial run s "
        "| mean train s | energy Wh | speed-up vs 1 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['concurrency']} | {r['cpu_per_trial']:g} | {r['wall_s']:.1f} "
            f"| {_fmt(r['trials_per_min'], '.2f')} | {_fmt(r['mean_trial_run_s'], '.1f')} "
            f"| {_fmt(r['mean_train_s'], '.1f')} | {1000 * r['energy_kwh']:.3f} "
            f"| {_fmt(r['speedup'], '.2f')} |"
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
    parser.add_argument("--trials", type=int, default=8, help="trials per sweep")
    parser.add_argument("--epochs", type=int, default=4, help="train.epochs of every trial")
    parser.add_argument("--seed", type=int, default=0, help="search.seed of every sweep")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=list(CONCURRENCY), help="trials at once"
    )
    parser.add_argument(
        "--cpus", type=float, default=float(os.cpu_count() or 1), help="CPUs Ray may use"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra dotted override for every sweep (repeatable)",
    )
    parser.add_argument(
        "--no-warmup", dest="warmup", action="store_false", help="skip the warm-up sweep"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_out" / "throughput")
    parser.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.epochs < 1 or min(args.concurrency) < 1 or args.cpus <= 0:
        parser.error("--trials, --epochs, --concurrency and --cpus must be positive")
    args.out = args.out.resolve()
    report = run_report(args, run_all)
    print(markdown(report))
    if args.json:
        print(json.dumps(repo_relative(report), separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
