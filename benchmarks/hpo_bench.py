"""HPO benchmark: a sweep trained on GRAFT subsets against full-data and random-subset sweeps.

Run from the repository root:

    .venv/bin/python benchmarks/hpo_bench.py --plot benchmarks/_out/hpo_bench.png
    .venv/bin/python benchmarks/hpo_bench.py --quick --json      # minutes on 2 CPUs

Four sweeps of one pipeline (``--pipeline``, default ``mnist``: MNIST-5k), each one call of
:func:`graft_hpo.run_sweep` over the same model-only search space
(``benchmarks/spaces/mnist_model.yaml``: lr, weight decay, batch size, width), with the same
sampler (TPE), sampler seed, trial count and concurrency. They differ only in
``selection.strategy``: ``full`` trains every trial on all the data; ``graft`` and ``random``
train on subsets of the same budget (``--fraction``, default the pipeline's own); ``infobatch``
prunes well-learnt samples each epoch (``selection.prune_ratio``, the pipeline's 0.5). With
``--joint`` the graft sweep also searches its budget and alignment threshold
(``benchmarks/spaces/mnist_joint.yaml``).

The protocol of AUTOMATA (Killamsetty et al., 2022): the best configuration of each sweep (the
highest ``val_acc`` among its FINISHED trials) is trained again on the full data
(``selection.strategy=full``, same epochs) in this process, without MLflow, and evaluated on the
held-out test split; its ``test_acc`` is reported.

Per sweep: best validation accuracy; the retrained test accuracy; the sweep's wall time (around
``run_sweep``: scheduling, process start-up, data loading and logging included); its energy
(kWh) and CO2 (kg), the sums of codecarbon's measurements over the sweep's trial runs, FAILED
ones included (they cost energy too; the retraining's cost is reported apart); the hypervolume
of the (val_acc max, co2_kg min) front of its finished trials, against ONE reference point shared
by the three sweeps (see :func:`reference_point`); and full/graft and full/random ratios of
energy, CO2 and wall time. A time breakdown separates each trial's fixed overhead from its
training and selection time. Progress goes to stderr; the Markdown report goes to stdout, then,
with ``--json``, one JSON object as the last line. ``--plot FILE`` draws the best validation
accuracy so far against the cumulative energy, in the order the trials completed.

Every sweep writes to one MLflow store under ``--out`` (``<out>/mlruns/mlflow.db``, experiments
``hpo-bench-full``, ``hpo-bench-graft``, ``hpo-bench-random``); ``graft-hpo pareto
--tracking-uri ...`` can read them afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local Ray on loopback: no token
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")

import torch  # noqa: E402

from benchmarks._machine import json_safe  # noqa: E402
from benchmarks._machine import load_avg  # noqa: E402
from benchmarks._machine import repo_relative  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import save_figure  # noqa: E402
from graft_hpo.config import load_pipeline  # noqa: E402
from graft_hpo.sweep import load_space  # noqa: E402
from graft_hpo.sweep import run_sweep  # noqa: E402
from graft_hpo.tracking import TAG_EARLY_STOPPED  # noqa: E402
from graft_hpo.tracking import TAG_ROLE  # noqa: E402
from graft_hpo.tracking import ensure_experiment  # noqa: E402
from graft_hpo.tracking import hypervolume_2d  # noqa: E402
from graft_hpo.tracking import query_runs  # noqa: E402
from graft_hpo.trial import run_trial  # noqa: E402

Json = dict[str, Any]

SWEEPS = ("full", "graft", "random", "infobatch")  # infobatch: selection.prune_ratio, not a budget
SPACES = ROOT / "benchmarks" / "spaces"
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
ACC_MARGIN = 0.01  # the reference accuracy sits this far below the worst finished trial
CO2_SCALE = 1.1  # the reference CO2 is this times the largest trial's
RATIO_KEYS = ("energy_kwh", "co2_kg", "duration_s")
GOAL_RATIO = 3.0
GOAL_TEST_GAP_PTS = 1.0

logger = logging.getLogger("hpo_bench")


# ---------------------------------------------------------------------------------------------
# pure helpers (no I/O): trials are dicts as built by read_trials


def is_candidate(trial: Mapping[str, Any]) -> bool:
    """A trial that may be the best or on a front: FINISHED, not stopped early, with val_acc."""
    acc = trial.get("val_acc")
    return (
        trial.get("status") == "FINISHED"
        and not trial.get("early_stopped", False)
        and isinstance(acc, (int, float))
        and math.isfinite(acc)
    )


def best_trial(trials: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The candidate with the highest val_acc (ties: the lower co2_kg, then the earlier)."""
    candidates = [t for t in trials if is_candidate(t)]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda t: (t["val_acc"], -_finite(t.get("co2_kg"), math.inf)),
    )


def reference_point(
    trials_by_sweep: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    acc_ref: str = "min",
    acc_margin: float = ACC_MARGIN,
    co2_scale: float = CO2_SCALE,
) -> tuple[float, float]:
    """The one (val_acc, co2_kg) reference point every sweep's hypervolume is measured from.

    Args:
        trials_by_sweep: sweep name -> its trials (dicts with ``status``, ``val_acc``,
            ``co2_kg``).
        acc_ref: ``"min"``: the lowest val_acc of any sweep's finished trials minus
            ``acc_margin``, floored at 0 (so the worst trial still adds area, and accuracy
            differences weigh as much as they can); ``"zero"``: accuracy 0.
        acc_margin: see ``acc_ref``; in accuracy units (0.01 = 1 point).
        co2_scale: the reference CO2 is the largest co2_kg of any trial (failed ones
            included) times this.

    Returns:
        ``(val_acc_ref, co2_kg_ref)``; co2 is NaN when no trial measured any.
    """
    everything = [t for trials in trials_by_sweep.values() for t in trials]
    accs = [t["val_acc"] for t in everything if is_candidate(t)]
    co2 = [t["co2_kg"] for t in everything if _finite(t.get("co2_kg")) is not None]
    if acc_ref == "zero" or not accs:
        acc = 0.0
    elif acc_ref == "min":
        acc = max(0.0, min(accs) - acc_margin)
    else:
        raise ValueError(f"acc_ref must be 'min' or 'zero'; got {acc_ref!r}")
    return acc, (max(co2) * co2_scale if co2 else math.nan)


def sweep_hypervolume(
    trials: Sequence[Mapping[str, Any]], reference: tuple[float, float]
) -> float:
    """Hypervolume (accuracy x kg CO2) of a sweep's finished trials above ``reference``."""
    points = [
        [t["val_acc"], t["co2_kg"]]
        for t in trials
        if is_candidate(t) and _finite(t.get("co2_kg")) is not None
    ]
    if not points or not math.isfinite(reference[1]):
        return 0.0
    return hypervolume_2d(points, reference=list(reference), maximize=[True, False])


def best_so_far_curve(trials: Sequence[Mapping[str, Any]]) -> list[tuple[float, float | None]]:
    """Best val_acc so far against cumulative energy, in trial completion order.

    Every trial adds its energy (a failed one too); only candidates can raise the best.

    Returns:
        One ``(cumulative energy_kwh, best val_acc so far or None)`` per trial, ordered by
        ``end_ms`` (trials without one last).
    """
    ordered = sorted(trials, key=lambda t: _finite(t.get("end_ms"), math.inf))
    curve: list[tuple[float, float | None]] = []
    energy = 0.0
    best: float | None = None
    for t in ordered:
        energy += _finite(t.get("energy_kwh"), 0.0)
        if is_candidate(t):
            best = t["val_acc"] if best is None else max(best, t["val_acc"])
        curve.append((energy, best))
    return curve


def ratio_table(
    runs: Mapping[str, Mapping[str, Any]],
    *,
    base: str = "full",
    keys: Sequence[str] = RATIO_KEYS,
) -> dict[str, dict[str, float | None]]:
    """``{"full/graft": {"energy_kwh": r, ...}, "full/random": {...}}``: base's value / other's.

    A ratio is None when either value is missing, not finite or the divisor is not positive.
    """
    out: dict[str, dict[str, float | None]] = {}
    if base not in runs:
        return out
    for name, run in runs.items():
        if name == base:
            continue
        row: dict[str, float | None] = {}
        for key in keys:
            num, den = _finite(runs[base].get(key)), _finite(run.get(key))
            row[key] = num / den if num is not None and den is not None and den > 0 else None
        out[f"{base}/{name}"] = row
    return out


def time_breakdown(
    trials: Sequence[Mapping[str, Any]],
    *,
    sweep_start_ms: float,
    sweep_end_ms: float,
    max_concurrent: int,
) -> Json:
    """Where a sweep's wall time goes, per trial (medians) and at its two ends (seconds).

    From MLflow's run start/end times and each trial's own clocks:

    - ``startup_s``: ``run_sweep`` called -> first trial run opened (validation, parent run,
      Tune setup, the first worker process: imports, data, model);
    - ``launch_gap_s``: a trial's run opened minus the last run that ended before it (process
      start, imports, data loading, model building), over the trials after the first
      ``max_concurrent``;
    - ``measure_s``: ``duration_s - train_s`` (codecarbon's start and stop);
    - ``mlflow_s``: run span minus ``duration_s`` (logging params, metrics, end);
    - ``train_s``: the training loop without selection (epochs, validation);
    - ``selection_s``: selecting subsets;
    - ``finish_s``: last trial run ended -> ``run_sweep`` returned (the front, its artifacts).
    """
    timed = sorted(
        (t for t in trials if t.get("start_ms") is not None and t.get("end_ms") is not None),
        key=lambda t: t["start_ms"],
    )
    gaps = []
    for t in timed[max_concurrent:]:
        before = [u["end_ms"] for u in timed if u["end_ms"] <= t["start_ms"]]
        if before:
            gaps.append((t["start_ms"] - max(before)) / 1000)

    def med(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    def col(key: str) -> list[float]:
        return [v for t in trials if (v := _finite(t.get(key))) is not None]

    duration = {id(t): _finite(t.get("duration_s")) for t in trials}
    measure = [
        d - t["train_s"]
        for t in trials
        if (d := duration[id(t)]) is not None and _finite(t.get("train_s")) is not None
    ]
    mlflow = [
        (t["end_ms"] - t["start_ms"]) / 1000 - d
        for t in timed
        if (d := duration[id(t)]) is not None
    ]
    train = [
        t["train_s"] - _finite(t.get("selection_s"), 0.0)
        for t in trials
        if _finite(t.get("train_s")) is not None
    ]
    return {
        "startup_s": (timed[0]["start_ms"] - sweep_start_ms) / 1000 if timed else None,
        "finish_s": (sweep_end_ms - max(t["end_ms"] for t in timed)) / 1000 if timed else None,
        "launch_gap_s": med(gaps),
        "measure_s": med(measure),
        "mlflow_s": med(mlflow),
        "train_s": med(train),
        "selection_s": med(col("selection_s")),
        "sum_duration_s": sum(col("duration_s")),
        "sum_train_s": sum(train),
        "sum_selection_s": sum(col("selection_s")),
    }


def _finite(value: Any, default: Any = None) -> Any:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return default


# ---------------------------------------------------------------------------------------------
# environment


# ---------------------------------------------------------------------------------------------
# sweeps


def common_overrides(args: argparse.Namespace) -> list[str]:
    """Overrides every sweep and every retraining shares (the user's --set last)."""
    out = [*PER_TRIAL, *(QUICK_OVERRIDES if args.quick else ())]
    if args.epochs is not None:
        out.append(f"train.epochs={args.epochs}")
    return out + list(args.set)


def space_for(args: argparse.Namespace, strategy: str) -> Path:
    return (args.joint_space if args.joint and strategy == "graft" else args.space).resolve()


def experiment_for(args: argparse.Namespace, strategy: str) -> str:
    return f"hpo-bench-{strategy}" + ("-joint" if args.joint and strategy == "graft" else "")


def sweep_overrides(args: argparse.Namespace, strategy: str) -> list[str]:
    """The sweep's overrides: what all three share, then what makes this one what it is."""
    out = [
        *common_overrides(args),
        "search.sampler=tpe",
        f"search.seed={args.seed}",
        f"search.max_concurrent={args.max_concurrent}",
        f"search.space={space_for(args, strategy)}",
        f"selection.strategy={strategy}",
        f"tracking.experiment={experiment_for(args, strategy)}",
    ]
    if strategy in ("graft", "random") and args.fraction is not None:
        out.append(f"selection.fraction={args.fraction}")
    return out


def read_trials(uri: str, experiment: str, sweep_id: str, names: Sequence[str]) -> list[Json]:
    """The sweep's trial runs from MLflow, in completion order; ``names`` = searched keys."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    trials = []
    for record in query_runs(uri, experiment, sweep_id=sweep_id):
        if record.tags.get(TAG_ROLE) == "sweep":
            continue
        info = client.get_run(record.run_id).info
        m = record.metrics
        trials.append(
            {
                "run_id": record.run_id,
                "status": record.status,
                "early_stopped": record.tags.get(TAG_EARLY_STOPPED, "").lower() == "true",
                "error": record.tags.get("error"),
                "params": {k: record.params[k] for k in names if k in record.params},
                "start_ms": info.start_time,
                "end_ms": info.end_time,
                **{
                    k: m.get(k)
                    for k in (
                        "val_acc",
                        "co2_kg",
                        "energy_kwh",
                        "duration_s",
                        "train_s",
                        "selection_s",
                        "fraction_effective",
                        "epochs_completed",
                    )
                },
            }
        )
    return sorted(trials, key=lambda t: _finite(t["end_ms"], math.inf))


def one_sweep(args: argparse.Namespace, strategy: str, uri: str, stamp: str) -> Json:
    overrides = sweep_overrides(args, strategy)
    config = load_pipeline(args.pipeline, overrides=overrides)  # fail early, before timing
    names = load_space(space_for(args, strategy)).names

    def say(line: str) -> None:
        print(f"[{strategy}] {line}", file=sys.stderr, flush=True)

    sweep_dir = args.out / "sweeps" / f"{strategy}-{stamp}"
    load_start = load_avg()
    start_ms = time.time() * 1000
    start = time.perf_counter()
    result = run_sweep(
        args.pipeline,
        trials=args.trials,
        overrides=overrides,
        tracking_uri=uri,
        sweep_dir=sweep_dir,
        printer=say,
    )
    wall = time.perf_counter() - start
    end_ms = time.time() * 1000
    trials = read_trials(uri, result.experiment, result.sweep_id, names)
    best = best_trial(trials)
    return {
        "strategy": strategy,
        "sweep_id": result.sweep_id,
        "experiment": result.experiment,
        "sweep_dir": result.sweep_dir,
        "space": str(space_for(args, strategy)),
        "fraction": config.selection.fraction if strategy in ("graft", "random") else None,
        "prune_ratio": config.selection.prune_ratio if strategy == "infobatch" else None,
        "fraction_searched": "selection.fraction" in names,
        "epochs": config.train.epochs,
        "n_trials": len(trials),
        "counts": dict(result.trials),
        "best_val_acc": best["val_acc"] if best else None,
        "best_run_id": best["run_id"] if best else None,
        "best_params": dict(best["params"]) if best else None,
        "energy_kwh": sum(_finite(t["energy_kwh"], 0.0) for t in trials),
        "co2_kg": sum(_finite(t["co2_kg"], 0.0) for t in trials),
        "duration_s": wall,
        "load_avg_1min": [load_start, load_avg()],  # at the sweep's start and end
        "time": time_breakdown(
            trials,
            sweep_start_ms=start_ms,
            sweep_end_ms=end_ms,
            max_concurrent=config.search.max_concurrent,
        ),
        "trials": trials,
    }


def retrain(args: argparse.Namespace, params: Mapping[str, str]) -> Json:
    """The best configuration again, on all the data, then evaluated on the test split.

    ``params`` are MLflow's strings; an override string is read as YAML (``1e-05`` -> float),
    exactly as ``--set`` reads it.
    """
    overrides = [
        *common_overrides(args),
        *(f"{k}={v}" for k, v in params.items()),
        "selection.strategy=full",
    ]
    config = load_pipeline(args.pipeline, overrides=overrides)
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


def warm_up(args: argparse.Namespace, uri: str, stamp: str) -> None:
    """A discarded 1-trial, 1-epoch sweep: the first sweep would pay the cold start alone.

    The first Ray worker processes import torch and graft_hpo from a cold disk cache, and
    MLflow's and Optuna's stores are first written to: seconds that no later sweep pays.
    """
    print("[warm-up] a discarded 1-trial, 1-epoch sweep", file=sys.stderr, flush=True)
    run_sweep(
        args.pipeline,
        trials=1,
        overrides=[
            *common_overrides(args),
            "train.epochs=1",
            "selection.strategy=full",
            f"search.space={args.space.resolve()}",
            "tracking.experiment=hpo-bench-warmup",
        ],
        tracking_uri=uri,
        sweep_dir=args.out / "sweeps" / f"warmup-{stamp}",
        printer=lambda line: print(f"[warm-up] {line}", file=sys.stderr, flush=True),
    )


def run_all(args: argparse.Namespace) -> Json:
    from graft_hpo.sweep import init_ray  # the sweeps' own Ray settings

    args.out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(args.out / 'mlruns' / 'mlflow.db').resolve()}"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    # One-off costs out of the first sweep's clock: Ray's start (5-7 s), the store's creation
    # (~2.4 s of migrations), matplotlib's import (the front's plot at each sweep's end), cold
    # imports in the first trial processes (the warm-up sweep).
    print(f"starting Ray; MLflow store {uri}", file=sys.stderr, flush=True)
    init_ray(None)
    for strategy in args.sweeps:
        ensure_experiment(uri, experiment_for(args, strategy))
    with contextlib.suppress(ImportError):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot
    if args.warmup:
        warm_up(args, uri, stamp)

    runs: dict[str, Json] = {}
    for strategy in args.sweeps:
        runs[strategy] = one_sweep(args, strategy, uri, stamp)
        r = runs[strategy]
        print(
            f"[{strategy}] done in {r['duration_s']:.1f}s: best val_acc {r['best_val_acc']}, "
            f"{1000 * r['energy_kwh']:.4f} Wh",
            file=sys.stderr,
            flush=True,
        )
    import ray

    ray.shutdown()  # the retraining gets the machine to itself

    torch.set_num_threads(args.threads)
    # The first training in this process pays codecarbon's hardware probe (~1.5 s, inside
    # duration_s), the data's first load and torch's first kernels (several seconds more
    # while Ray's processes exit): a discarded 1-epoch run pays them, not the first retraining.
    warm = load_pipeline(
        args.pipeline, [*common_overrides(args), "train.epochs=1", "selection.strategy=full"]
    )
    run_trial(warm, tracking=False)
    for strategy, run in runs.items():
        if run["best_params"] is None:
            run["retrain"] = None
            run["test_acc"] = None
            continue
        print(f"[{strategy}] retraining {run['best_params']}", file=sys.stderr, flush=True)
        run["retrain"] = retrain(args, run["best_params"])
        run["test_acc"] = run["retrain"]["test_acc"]

    reference = reference_point({k: r["trials"] for k, r in runs.items()}, acc_ref=args.hv_acc)
    zero_ref = reference_point({k: r["trials"] for k, r in runs.items()}, acc_ref="zero")
    for run in runs.values():
        run["hypervolume"] = sweep_hypervolume(run["trials"], reference)
        run["hypervolume_acc0"] = sweep_hypervolume(run["trials"], zero_ref)
        run["curve"] = best_so_far_curve(run["trials"])
    return {
        "runs": runs,
        "ratios": ratio_table(runs),
        "reference_point": {"val_acc": reference[0], "co2_kg": reference[1], "acc": args.hv_acc},
        "reference_point_acc0": {"val_acc": zero_ref[0], "co2_kg": zero_ref[1]},
        "tracking_uri": uri,
    }


# ---------------------------------------------------------------------------------------------
# report


def goals(report: Json) -> list[Json]:
    runs, ratios = report["runs"], report["ratios"]
    checks: list[Json] = []

    def add(goal: str, ok: bool | None, detail: str) -> None:
        verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
        checks.append({"goal": goal, "verdict": verdict, "detail": detail})

    fg = ratios.get("full/graft", {})
    for key, label in (("energy_kwh", "energy"), ("duration_s", "wall time")):
        r = fg.get(key)
        add(
            f"graft sweep at least {GOAL_RATIO:g}x less {label} than full",
            None if r is None else r >= GOAL_RATIO,
            "not run" if r is None else f"full/graft {r:.2f}x",
        )
    full_t = runs.get("full", {}).get("test_acc")
    graft_t = runs.get("graft", {}).get("test_acc")
    if full_t is not None and graft_t is not None:
        gap = 100 * (full_t - graft_t)
        add(
            f"graft's retrained test acc within {GOAL_TEST_GAP_PTS:g} pt of full's",
            gap <= GOAL_TEST_GAP_PTS,
            f"{100 * graft_t:.2f}% vs {100 * full_t:.2f}% (gap {gap:+.2f} pts)",
        )
    else:
        add(f"graft's test acc within {GOAL_TEST_GAP_PTS:g} pt of full's", None, "not run")
    hv_g = runs.get("graft", {}).get("hypervolume")
    hv_r = runs.get("random", {}).get("hypervolume")
    add(
        "graft hypervolume > random's",
        None if hv_g is None or hv_r is None else hv_g > hv_r,
        "not run" if hv_g is None or hv_r is None else f"{hv_g:.4g} vs {hv_r:.4g}",
    )
    return checks


def _fraction(run: Mapping[str, Any]) -> str:
    if run.get("fraction_searched"):
        return "searched"
    if run.get("prune_ratio") is not None:
        return f"prune {run['prune_ratio']:g}"
    return "1" if run.get("fraction") is None else f"{run['fraction']:g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _num(x: float | None, fmt: str = ".1f", scale: float = 1.0) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{scale * x:{fmt}}"


def markdown(report: Json) -> str:
    a, m, runs = report["args"], report["machine"], report["runs"]
    ref = report["reference_point"]
    first: Json = next(iter(runs.values()), {})
    lines = [
        "# HPO benchmark: graft vs random vs full sweeps",
        "",
        f"Machine: {m['description']}; torch {m['torch']}, Python {m['python']}; "
        f"1-min load at start {m['load_avg_1min_at_start']}.",
        f"Pipeline `{a['pipeline']}`, {a['trials']} trials per sweep, {first.get('epochs')} "
        f"epochs, TPE seed {a['seed']}, {a['max_concurrent']} trials at once; quick "
        f"{a['quick']}; joint {a['joint']}; extra overrides {a['set'] or 'none'}; benchmark "
        f"wall time {report['wall_s']:.0f} s.",
        f"Hypervolume reference (shared): val_acc {ref['val_acc']:.4f} "
        f"({'min finished val_acc - ' + str(ACC_MARGIN) if ref['acc'] == 'min' else 'zero'}), "
        f"co2 {_num(ref['co2_kg'], '.4g', 1000)} g ({CO2_SCALE} x the largest trial's).",
        "",
        "| sweep | fraction | trials (ok/failed) | best val acc (%) | retrained test acc (%) "
        "| wall time (s) | energy (Wh) | CO2 (g) | hypervolume (acc x g) "
        "| retrain: time (s) / energy (Wh) / CO2 (g) | load (start/end) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        c, rt = r["counts"], r.get("retrain") or {}
        lines.append(
            f"| {name} | {_fraction(r)} "
            f"| {c.get('FINISHED', 0)}/{c.get('FAILED', 0)} "
            f"| {_pct(r['best_val_acc'])} | {_pct(r['test_acc'])} "
            f"| {r['duration_s']:.1f} | {1000 * r['energy_kwh']:.4f} | {1000 * r['co2_kg']:.4f} "
            f"| {_num(r['hypervolume'], '.4g', 1000)} "
            f"| {_num(rt.get('duration_s'))} / {_num(rt.get('energy_kwh'), '.4f', 1000)} "
            f"/ {_num(rt.get('co2_kg'), '.4f', 1000)} "
            f"| {'/'.join(_num(x) for x in r['load_avg_1min'])} |"
        )
    lines += ["", "| ratio | energy | CO2 | wall time |", "|---|---|---|---|"]
    if not report["ratios"]:
        lines.append("| (the full sweep was not run) | - | - | - |")
    for name, row in report["ratios"].items():
        cells = " | ".join(_num(row.get(k), ".2f") + "x" for k in RATIO_KEYS)
        lines.append(f"| {name} | {cells} |")
    lines += [
        "",
        "Where the time goes (s; per trial: medians):",
        "",
        "| sweep | startup | launch gap / trial | codecarbon / trial | MLflow / trial "
        "| training / trial | selection / trial | finish | sum of trial durations "
        "| sum training | sum selection |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        t = r["time"]
        lines.append(
            f"| {name} | {_num(t['startup_s'])} | {_num(t['launch_gap_s'])} "
            f"| {_num(t['measure_s'], '.2f')} | {_num(t['mlflow_s'], '.2f')} "
            f"| {_num(t['train_s'], '.2f')} | {_num(t['selection_s'], '.2f')} "
            f"| {_num(t['finish_s'])} | {t['sum_duration_s']:.1f} | {t['sum_train_s']:.1f} "
            f"| {t['sum_selection_s']:.1f} |"
        )
    failed = [(n, t) for n, r in runs.items() for t in r["trials"] if t["status"] == "FAILED"]
    if failed:
        lines += ["", "Failed trials (their energy counts):", ""]
        lines += [f"- {n} {t['run_id'][:8]} {t['params']}: {t['error']}" for n, t in failed]
    lines += ["", "| goal | verdict | numbers |", "|---|---|---|"]
    lines += [f"| {g['goal']} | {g['verdict']} | {g['detail']} |" for g in report["goals"]]
    return "\n".join(lines)


def plot(report: Json, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"full": "k", "graft": "tab:blue", "random": "tab:orange", "infobatch": "tab:green"}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, run in report["runs"].items():
        pts = [(1000 * e, 100 * b) for e, b in run["curve"] if b is not None]
        if not pts:
            continue
        x, y = zip(*pts, strict=True)
        ax.step(x, y, where="post", color=colors.get(name), label=name, marker="o", ms=4)
    a = report["args"]
    ax.set_title(
        f"{a['pipeline']}: {a['trials']} trials per sweep, best-so-far in completion order",
        fontsize=10,
    )
    ax.set_xlabel("cumulative energy of the sweep's trials (Wh, codecarbon)")
    ax.set_ylabel("best validation accuracy so far (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--pipeline", default="mnist", help="bundled name or YAML path")
    parser.add_argument("--trials", type=int, default=None, help="per sweep; default 12")
    parser.add_argument("--epochs", type=int, default=None, help="default: the pipeline's")
    parser.add_argument(
        "--fraction", type=float, default=None, help="graft/random budget; default the pipeline's"
    )
    parser.add_argument("--seed", type=int, default=0, help="search.seed of every sweep")
    parser.add_argument("--max-concurrent", type=int, default=2, help="trials at once")
    parser.add_argument("--sweeps", nargs="+", choices=SWEEPS, default=list(SWEEPS))
    parser.add_argument("--space", type=Path, default=SPACES / "mnist_model.yaml")
    parser.add_argument("--joint", action="store_true", help="graft also searches its budget")
    parser.add_argument("--joint-space", type=Path, default=SPACES / "mnist_joint.yaml")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra dotted override for every sweep and retraining (repeatable)",
    )
    parser.add_argument(
        "--hv-acc",
        choices=["min", "zero"],
        default="min",
        help="reference accuracy of the hypervolume: min finished val_acc - 0.01, or 0",
    )
    parser.add_argument(
        "--no-warmup", dest="warmup", action="store_false", help="skip the warm-up sweep"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the retraining")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_out" / "hpo_bench")
    parser.add_argument("--quick", action="store_true", help="3 trials of 3 epochs per sweep")
    parser.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG here")
    args = parser.parse_args(argv)
    args.trials = args.trials or (QUICK_TRIALS if args.quick else 12)
    args.out = args.out.resolve()
    report = run_report(args, run_all)
    report["goals"] = goals(report)
    print(markdown(report))
    if args.plot:
        plot(report, args.plot)
    if args.json:
        print(json.dumps(repo_relative(json_safe(report)), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
