"""The benchmark of the promise: how much cheaper is HPO with the recommended recipe?

Run from the repository root (about 20 minutes on 2 CPUs):

    .venv/bin/python benchmarks/savings_bench.py --seeds 0 1 2 --json \\
        --plot docs/img/savings_bench.png > benchmarks/results/savings.md

In one process, per search seed, sweeps of the bundled ``mnist`` pipeline over the same
model-only space (``benchmarks/spaces/mnist_model.yaml``: lr, weight decay, batch size, width),
the same TPE seed, trial count and concurrency (see ``ARMS``):

- ``baseline``: every trial on all the data, no scheduler (the 1x of every ratio);
- the recipe, ASHA (grace 2 epochs, reduction 3) with ``full``, ``random`` (budget
  ``--fraction``, no warm-up) and ``graft`` (the sweep ranks the data once with a proxy model,
  ``selection.scope=sweep``; every trial trains on its budget's prefix, no warm-up) arms;
- ``asha-graft-trial``: ASHA with per-trial GRAFT (warm-up epoch, own selection round), for
  the record of what amortising the selection buys.

Every arm's best configuration (highest val_acc of its finished, not early-stopped trials) is
trained again on all the data and tested on the held-out split (AUTOMATA's protocol). The
any-time view: whenever an arm's incumbent changes (trials in completion order), it is
retrained and tested; ``energy_to_target_kwh`` is the sweep energy at which the incumbent first
tests within ``TARGET_GAP`` of the baseline's final retrained accuracy. Sweep energy is the sum
of codecarbon's trial measurements plus the shared selection's own (``shared_selection_kwh``);
retraining energy is not counted. Ratios are baseline/arm, from the same run.

Last stdout line with ``--json``: ``baseline``, ``recipe``, ``random_arm``, ``runs`` (arm ->
``energy_kwh``, ``duration_s``, ``test_acc``, ``hypervolume``, ``energy_to_target_kwh``,
``strategy``, ...: means over seeds) and ``seeds`` (seed -> the same per arm).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import hpo_bench  # noqa: E402  (sets Ray/MLflow/codecarbon environment)
from benchmarks._machine import json_safe  # noqa: E402
from benchmarks._machine import repo_relative  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import save_figure  # noqa: E402

Json = dict[str, Any]

ASHA = "search.scheduler={type: asha, grace_period: 2, reduction_factor: 3}"
# arm -> (strategy, overrides); every arm also gets the shared overrides of `sweep_overrides`
ARMS: dict[str, tuple[str, list[str]]] = {
    "baseline": ("full", ["search.scheduler=null"]),
    "asha-full": ("full", [ASHA]),
    "asha-random": ("random", [ASHA, "selection.warm_start_epochs=0"]),
    "asha-graft": ("graft", [ASHA, "selection.warm_start_epochs=0", "selection.scope=sweep"]),
    "asha-graft-trial": (
        "graft",
        [ASHA, "selection.scope=trial", "selection.warm_start_epochs=1"],
    ),
}
BASELINE, RECIPE, RANDOM_ARM = "baseline", "asha-graft", "asha-random"
TARGET_GAP = 0.005  # the any-time target: within 0.5 point of the baseline's retrained test acc


# ---------------------------------------------------------------------------------------------
# pure helpers


def incumbent_changes(trials: list[Json], start_energy: float = 0.0) -> list[Json]:
    """Where the best finished trial so far changes, in completion order.

    Returns:
        ``{"energy_kwh", "run_id", "val_acc", "params"}`` per change; ``energy_kwh`` is the
        cumulative sweep energy (``start_energy`` plus every trial's, failed and early-stopped
        ones included) when the new incumbent's trial ended.
    """
    energy, best, out = start_energy, None, []
    for t in sorted(trials, key=lambda t: hpo_bench._finite(t.get("end_ms"), math.inf)):
        energy += hpo_bench._finite(t.get("energy_kwh"), 0.0)
        if hpo_bench.is_candidate(t) and (best is None or t["val_acc"] > best):
            best = t["val_acc"]
            out.append(
                {
                    "energy_kwh": energy,
                    "run_id": t["run_id"],
                    "val_acc": best,
                    "params": t["params"],
                }
            )
    return out


def energy_to_target(curve: list[Json], target: float, total: float) -> tuple[float, bool]:
    """The first cumulative energy at which the incumbent tests at ``target`` or better.

    Returns:
        ``(energy, reached)``; ``(total, False)`` when it never gets there.
    """
    for point in curve:
        if point.get("test_acc") is not None and point["test_acc"] >= target:
            return point["energy_kwh"], True
    return total, False


def mean_runs(per_seed: Mapping[str, Mapping[str, Json]]) -> dict[str, Json]:
    """Means over seeds of every numeric field of each arm (None where a seed lacks it)."""
    arms = next(iter(per_seed.values())).keys() if per_seed else []
    out: dict[str, Json] = {}
    for arm in arms:
        rows = [seed_runs[arm] for seed_runs in per_seed.values()]
        merged: Json = {"strategy": rows[0]["strategy"]}
        for key, value in rows[0].items():
            if value is None:
                merged[key] = None
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
                merged[key] = statistics.mean(values) if len(values) == len(rows) else None
        merged["reached_target"] = sum(bool(r.get("reached_target")) for r in rows)
        out[arm] = merged
    return out


# ---------------------------------------------------------------------------------------------
# sweeps


def sweep_overrides(args: argparse.Namespace, arm: str, seed: int) -> list[str]:
    strategy, extra = ARMS[arm]
    quick = list(hpo_bench.QUICK_OVERRIDES) if args.quick else []
    epochs = [f"train.epochs={args.epochs}"] if args.epochs is not None else []
    out = [
        *quick,
        *epochs,
        "search.sampler=tpe",
        f"search.seed={seed}",
        f"search.max_concurrent={args.max_concurrent}",
        f"search.space={args.space.resolve()}",
        f"selection.strategy={strategy}",
        f"tracking.experiment=savings-{arm}",
        *extra,
    ]
    if strategy != "full":
        out.append(f"selection.fraction={args.fraction}")
    return out + list(args.set)  # the user's overrides last


def one_sweep(args: argparse.Namespace, arm: str, seed: int, uri: str, stamp: str) -> Json:
    from graft_hpo.sweep import load_space
    from graft_hpo.sweep import run_sweep
    from graft_hpo.sweep._ranking import ranking_cost

    def say(line: str) -> None:
        print(f"[{arm} s{seed}] {line}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    result = run_sweep(
        args.pipeline,
        trials=args.trials,
        overrides=sweep_overrides(args, arm, seed),
        tracking_uri=uri,
        sweep_dir=args.out / "sweeps" / f"{arm}-s{seed}-{stamp}",
        printer=say,
    )
    wall = time.perf_counter() - start
    names = load_space(args.space).names
    trials = hpo_bench.read_trials(uri, result.experiment, result.sweep_id, names)
    shared = ranking_cost(result.sweep_dir).get("energy_kwh", 0.0)
    trial_energy = sum(hpo_bench._finite(t["energy_kwh"], 0.0) for t in trials)
    graft = [t for t in trials if ARMS[arm][0] == "graft"]
    sel_share = [
        t["selection_s"] / t["duration_s"]
        for t in graft
        if t.get("selection_s") is not None and t.get("duration_s")
    ]
    return {
        "strategy": ARMS[arm][0],
        "sweep_id": result.sweep_id,
        "counts": dict(result.trials),
        "trials": trials,
        "energy_kwh": trial_energy + shared,
        "shared_selection_kwh": shared,
        "duration_s": wall,
        "epochs_trained": sum(hpo_bench._finite(t["epochs_completed"], 0.0) for t in trials),
        "selection_share_max": max(sel_share) if sel_share else None,
        "curve": incumbent_changes(trials, start_energy=shared),
    }


def retrain_cached(args: argparse.Namespace, params: Mapping[str, str], cache: dict) -> Json:
    key = json.dumps(dict(params), sort_keys=True)
    if key not in cache:
        print(f"[retrain] {dict(params)}", file=sys.stderr, flush=True)
        cache[key] = hpo_bench.retrain(args, params)
    return cache[key]


def run_all(args: argparse.Namespace) -> Json:
    import torch

    from graft_hpo.sweep import init_ray
    from graft_hpo.tracking import ensure_experiment

    args.out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(args.out / 'mlruns' / 'mlflow.db').resolve()}"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    init_ray(None)
    for arm in args.arms:
        ensure_experiment(uri, f"savings-{arm}")
    # a discarded sweep pays the cold start (first worker processes, the stores' first writes)
    hpo_bench.warm_up(args, uri, stamp)
    per_seed: dict[str, dict[str, Json]] = {}
    for seed in args.seeds:
        per_seed[str(seed)] = {arm: one_sweep(args, arm, seed, uri, stamp) for arm in args.arms}
    import ray

    ray.shutdown()  # the retrainings get the machine to themselves
    torch.set_num_threads(args.threads)
    cache: dict[str, Json] = {}
    for runs in per_seed.values():
        for run in runs.values():
            for point in run["curve"]:
                point["test_acc"] = retrain_cached(args, point["params"], cache)["test_acc"]
            final = run["curve"][-1] if run["curve"] else {}
            run["test_acc"] = final.get("test_acc")
        ref = hpo_bench.reference_point({a: r["trials"] for a, r in runs.items()})
        base_acc = runs[BASELINE]["test_acc"] if BASELINE in runs else None
        for run in runs.values():
            run["hypervolume"] = hpo_bench.sweep_hypervolume(run["trials"], ref)
            target = None if base_acc is None else base_acc - TARGET_GAP
            energy, reached = (
                energy_to_target(run["curve"], target, run["energy_kwh"])
                if target is not None
                else (None, False)
            )
            run["energy_to_target_kwh"], run["reached_target"] = energy, reached
    means = mean_runs(per_seed)
    base = means.get(BASELINE, {})
    for run in means.values():
        for key in ("energy_kwh", "duration_s"):
            num, den = base.get(key), run.get(key)
            run[f"{key}_ratio"] = num / den if num and den else None
    return {
        "baseline": BASELINE,
        "recipe": RECIPE,
        "random_arm": RANDOM_ARM,
        "runs": means,
        "seeds": per_seed,
        "tracking_uri": uri,
    }


# ---------------------------------------------------------------------------------------------
# report


def markdown(report: Json) -> str:
    a, m = report["args"], report["machine"]
    lines = [
        "# Savings benchmark: the recipe against a full-data sweep",
        "",
        f"Machine: {m['description']}; torch {m['torch']}. Pipeline `{a['pipeline']}`, "
        f"{a['trials']} trials per sweep, {a['max_concurrent']} at once, budget {a['fraction']}, "
        f"TPE seeds {a['seeds']}; benchmark wall time {report['wall_s']:.0f} s. Means over seeds;"
        " ratios are baseline / arm.",
        "",
        "| arm | energy (Wh) | energy ratio | wall (s) | wall ratio | epochs trained "
        "| shared selection (Wh) | retrained test acc (%) | hypervolume (acc x g) "
        "| energy to target (Wh) | seeds at target | max selection share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, r in report["runs"].items():
        lines.append(
            f"| {arm} | {_n(r['energy_kwh'], 1000, '.4f')} | {_n(r['energy_kwh_ratio'])}x "
            f"| {_n(r['duration_s'], 1, '.1f')} | {_n(r['duration_s_ratio'])}x "
            f"| {_n(r['epochs_trained'], 1, '.0f')} "
            f"| {_n(r['shared_selection_kwh'], 1000, '.4f')} "
            f"| {_n(r['test_acc'], 100)} | {_n(r['hypervolume'], 1000, '.4g')} "
            f"| {_n(r['energy_to_target_kwh'], 1000, '.4f')} "
            f"| {r['reached_target']}/{len(report['seeds'])} "
            f"| {_n(r['selection_share_max'], 100)}% |"
        )
    lines += ["", "Per seed (retrained test acc %, hypervolume):", ""]
    for seed, runs in report["seeds"].items():
        cells = ", ".join(
            f"{arm} {_n(r['test_acc'], 100)} / {_n(r['hypervolume'], 1000, '.3g')}"
            for arm, r in runs.items()
        )
        lines.append(f"- seed {seed}: {cells}")
    return "\n".join(lines)


def _n(x: Any, scale: float = 1.0, fmt: str = ".2f") -> str:
    return "-" if not isinstance(x, (int, float)) or not math.isfinite(x) else f"{scale * x:{fmt}}"


def plot(report: Json, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = report["seeds"]
    fig, axes = plt.subplots(1, len(seeds), figsize=(4.2 * len(seeds), 3.8), squeeze=False)
    for ax, (seed, runs) in zip(axes[0], seeds.items(), strict=True):
        for arm, run in runs.items():
            pts = [(1000 * p["energy_kwh"], 100 * p["test_acc"]) for p in run["curve"]]
            pts.append((1000 * run["energy_kwh"], pts[-1][1]) if pts else (0, 0))
            x, y = zip(*pts, strict=True)
            ax.step(x, y, where="post", marker="o", ms=3, label=arm)
        base = runs.get(BASELINE, {}).get("test_acc")
        if base is not None:
            target = 100 * (base - TARGET_GAP)
            ax.axhline(target, color="grey", ls="--", lw=0.8, label="target")
        ax.set_xscale("log")
        ax.set_title(f"search seed {seed}", fontsize=9)
        ax.set_xlabel("cumulative sweep energy (Wh)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("incumbent retrained on full data: test acc (%)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--pipeline", default="mnist")
    parser.add_argument("--trials", type=int, default=12, help="per sweep")
    parser.add_argument("--epochs", type=int, default=None, help="default: the pipeline's")
    parser.add_argument("--fraction", type=float, default=0.2, help="random/graft budget")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--space", type=Path, default=hpo_bench.SPACES / "mnist_model.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of retraining")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_out" / "savings")
    parser.add_argument("--quick", action="store_true", help="3 trials of 3 epochs per sweep")
    parser.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG here")
    args = parser.parse_args(argv)
    if BASELINE not in args.arms:
        parser.error(f"--arms must include {BASELINE!r}: every ratio is taken against it")
    if args.quick:
        args.trials = hpo_bench.QUICK_TRIALS
    args.out = args.out.resolve()
    report = run_report(args, run_all)
    print(markdown(report))
    if args.plot:
        plot(report, args.plot)
    if args.json:
        safe = json_safe(report)
        print(json.dumps(repo_relative(safe), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
