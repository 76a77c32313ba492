"""Sweeps side by side in one benchmark: one Ray, one MLflow store, timed ``run_sweep`` calls.

Shared by ``hpo_bench.py``, ``savings_bench.py`` and ``throughput_bench.py``: the environment
Ray, MLflow and codecarbon read (set when this module is imported, before any of them is), the
store and a discarded warm-up sweep that take the one-off costs out of the first sweep's clock,
a sweep timed with the load average at both ends, its trial runs read back from MLflow (the
records :mod:`benchmarks._trials` sums up), and the retraining of a best configuration on all
the data (AUTOMATA's protocol: its ``test_acc`` is the sweep's reported accuracy).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray binds 127.0.0.1
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local Ray on loopback: no token
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")

from benchmarks._machine import load_avg
from benchmarks._machine import say
from benchmarks._stats import finite
from graft_hpo.config import load_pipeline
from graft_hpo.sweep import run_sweep
from graft_hpo.tracking import TAG_EARLY_STOPPED
from graft_hpo.tracking import TAG_ROLE
from graft_hpo.tracking import query_runs
from graft_hpo.trial import run_trial

Json = dict[str, Any]

QUICK_TRIALS = 3
# the protocol of the tables in the README: per-trial GRAFT (one full-data warm-up epoch, one
# selection after it), no scheduler, whatever the pipeline's own recipe is
PER_TRIAL = (
    "search.scheduler=null",
    "selection.scope=trial",
    "selection.warm_start_epochs=1",
    "selection.select_every=20",
)
QUICK_OVERRIDES = (
    "train.epochs=3",
    "selection.warm_start_epochs=1",
    "selection.select_every=1",
    "emissions.measure_power_secs=0.5",
)
TRIAL_METRICS = (
    "val_acc",
    "test_acc",  # trials trained to the end only
    "co2_kg",
    "energy_kwh",
    "duration_s",
    "train_s",
    "selection_s",
    "fraction_effective",
    "epochs_completed",
)


def common_overrides(args: argparse.Namespace) -> list[str]:
    """Overrides of ``hpo_bench.py``'s sweeps, and of every warm-up sweep and retraining:
    :data:`PER_TRIAL`, ``--quick``'s, ``--epochs``, then the user's ``--set`` last."""
    out = [*PER_TRIAL, *(QUICK_OVERRIDES if args.quick else ())]
    if args.epochs is not None:
        out.append(f"train.epochs={args.epochs}")
    return out + list(args.set)


def open_store(
    out: Path, experiments: Sequence[str], *, num_cpus: int | None = None
) -> tuple[str, str]:
    """Start Ray and create the experiments in ``<out>/mlruns/mlflow.db``, off every clock.

    Ray's start (5-7 s) and the store's creation (~2.4 s of migrations) would otherwise fall
    in the first sweep alone.

    Returns:
        ``(tracking_uri, stamp)``; the stamp (``YYYYmmdd-HHMMSS``) names the sweep folders.
    """
    from graft_hpo.sweep import init_ray  # the sweeps' own Ray settings
    from graft_hpo.tracking import ensure_experiment

    out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(out / 'mlruns' / 'mlflow.db').resolve()}"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    cpus = "" if num_cpus is None else f" with {num_cpus} CPUs"
    say(f"starting Ray{cpus}; MLflow store {uri}")
    init_ray(None, num_cpus=num_cpus)
    for name in experiments:
        ensure_experiment(uri, name)
    return uri, stamp


def stop_ray() -> None:
    """Shut Ray down: what runs next (a retraining) gets the machine to itself."""
    import ray

    ray.shutdown()


@dataclass(frozen=True)
class TimedSweep:
    """One ``run_sweep`` call and its clocks: wall seconds, epoch ms at both ends, load."""

    result: Any  # graft_hpo.sweep.SweepResult
    wall_s: float
    start_ms: float
    end_ms: float
    load_avg_1min: list[float | None]  # at the sweep's start and end


def timed_sweep(
    args: argparse.Namespace, overrides: list[str], *, uri: str, folder: str, tag: str
) -> TimedSweep:
    """:func:`graft_hpo.run_sweep` of ``args.pipeline`` with ``args.trials`` trials, timed
    around the call, in ``<args.out>/sweeps/<folder>``; its lines go to stderr as ``[tag]``."""
    load_start = load_avg()
    start_ms = time.time() * 1000
    start = time.perf_counter()
    result = run_sweep(
        args.pipeline,
        trials=args.trials,
        overrides=overrides,
        tracking_uri=uri,
        sweep_dir=args.out / "sweeps" / folder,
        printer=lambda line: say(f"[{tag}] {line}"),
    )
    wall = time.perf_counter() - start
    return TimedSweep(result, wall, start_ms, time.time() * 1000, [load_start, load_avg()])


def warm_up(
    args: argparse.Namespace,
    uri: str,
    stamp: str,
    *,
    overrides: list[str] | None = None,
    experiment: str = "hpo-bench-warmup",
) -> None:
    """A discarded 1-trial, 1-epoch sweep: the first sweep would pay the cold start alone.

    The first Ray worker processes import torch and graft_hpo from a cold disk cache, and
    MLflow's and Optuna's stores are first written to: seconds that no later sweep pays.

    Args:
        args: ``pipeline`` and ``out`` (the sweep's folder is ``<out>/sweeps/warmup-<stamp>``);
            without ``overrides``, also what :func:`common_overrides` and ``space`` read.
        overrides: the sweep's; default a full-data sweep over ``args.space`` with
            :func:`common_overrides`. ``train.epochs=1`` and the experiment come after them.
    """
    if overrides is None:
        space = args.space.resolve()
        overrides = [*common_overrides(args), "selection.strategy=full", f"search.space={space}"]
    say("[warm-up] a discarded 1-trial, 1-epoch sweep")
    run_sweep(
        args.pipeline,
        trials=1,
        overrides=[*overrides, "train.epochs=1", f"tracking.experiment={experiment}"],
        tracking_uri=uri,
        sweep_dir=args.out / "sweeps" / f"warmup-{stamp}",
        printer=lambda line: say(f"[warm-up] {line}"),
    )


def read_trials(uri: str, experiment: str, sweep_id: str, names: Sequence[str]) -> list[Json]:
    """The sweep's trial runs from MLflow, in completion order; ``names`` = searched keys."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    trials = []
    for record in query_runs(uri, experiment, sweep_id=sweep_id):
        if record.tags.get(TAG_ROLE) == "sweep":
            continue
        info = client.get_run(record.run_id).info
        trials.append(
            {
                "run_id": record.run_id,
                "status": record.status,
                "early_stopped": record.tags.get(TAG_EARLY_STOPPED, "").lower() == "true",
                "error": record.tags.get("error"),
                "params": {k: record.params[k] for k in names if k in record.params},
                "start_ms": info.start_time,
                "end_ms": info.end_time,
                **{k: record.metrics.get(k) for k in TRIAL_METRICS},
            }
        )
    return sorted(trials, key=lambda t: finite(t["end_ms"], math.inf))


def retrain(pipeline: str, overrides: list[str], params: Mapping[str, str]) -> Json:
    """A configuration again, on all the data, then evaluated on the test split.

    ``params`` are MLflow's strings; an override string is read as YAML (``1e-05`` -> float),
    exactly as ``--set`` reads it. They come after ``overrides``; ``selection.strategy=full``
    comes last.
    """
    overrides = [*overrides, *(f"{k}={v}" for k, v in params.items()), "selection.strategy=full"]
    config = load_pipeline(pipeline, overrides=overrides)
    start = time.perf_counter()
    result = run_trial(config, tracking=False, evaluate_test=True)
    m = result.metrics
    return {
        "status": result.status,
        "error": result.error,
        "overrides": overrides,
        "test_acc": m.get("test_acc"),
        "val_acc": m.get("val_acc"),
        "energy_kwh": m.get("energy_kwh"),
        "co2_kg": m.get("co2_kg"),
        "duration_s": m.get("duration_s"),
        "call_s": time.perf_counter() - start,  # with data loading and model building
    }
