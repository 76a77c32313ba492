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
import statistics
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._cli import add_sweep_options  # noqa: E402
from benchmarks._cli import check_pipelines  # noqa: E402
from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._machine import print_report  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._plot import axes_row  # noqa: E402
from benchmarks._plot import label  # noqa: E402
from benchmarks._plot import save_figure  # noqa: E402
from benchmarks._plot import step_curve  # noqa: E402
from benchmarks._sweeps import QUICK_OVERRIDES  # noqa: E402  (sets Ray/MLflow/codecarbon env)
from benchmarks._sweeps import QUICK_TRIALS  # noqa: E402
from benchmarks._sweeps import common_overrides  # noqa: E402
from benchmarks._sweeps import open_store  # noqa: E402
from benchmarks._sweeps import read_trials  # noqa: E402
from benchmarks._sweeps import retrain  # noqa: E402
from benchmarks._sweeps import stop_ray  # noqa: E402
from benchmarks._sweeps import timed_sweep  # noqa: E402
from benchmarks._sweeps import warm_up  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._tables import num  # noqa: E402
from benchmarks._trials import incumbent_changes  # noqa: E402
from benchmarks._trials import reference_point  # noqa: E402
from benchmarks._trials import sweep_hypervolume  # noqa: E402
from benchmarks._trials import total  # noqa: E402

Json = dict[str, Any]

# Ray's ASHA on val_acc, stopped trials told to Optuna as COMPLETE with their truncated values:
# the protocol of the published table (one strategy per arm, so MO-ASHA's ranking on CO2 would
# matter less here; front_bench.py compares the schedulers)
ASHA = "search.scheduler={type: asha, grace_period: 2, reduction_factor: 3}"
COMPLETE = "search.stopped_report=complete"
# arm -> (strategy, overrides); every arm also gets the shared overrides of `sweep_overrides`
ARMS: dict[str, tuple[str, list[str]]] = {
    "baseline": ("full", ["search.scheduler=null"]),
    "asha-full": ("full", [ASHA, COMPLETE]),
    "asha-random": ("random", [ASHA, COMPLETE, "selection.warm_start_epochs=0"]),
    "asha-graft": (
        "graft",
        [ASHA, COMPLETE, "selection.warm_start_epochs=0", "selection.scope=sweep"],
    ),
    "asha-graft-trial": (
        "graft",
        [ASHA, COMPLETE, "selection.scope=trial", "selection.warm_start_epochs=1"],
    ),
}
BASELINE, RECIPE, RANDOM_ARM = "baseline", "asha-graft", "asha-random"
TARGET_GAP = 0.005  # the any-time target: within 0.5 point of the baseline's retrained test acc


# ---------------------------------------------------------------------------------------------
# pure helpers


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
    """Means over seeds of every numeric field of each arm (None where a seed lacks it); a
    ``*_max`` field is the largest over the seeds, so that its column is a maximum."""
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
                combine = max if key.endswith("_max") else statistics.mean
                merged[key] = combine(values) if len(values) == len(rows) else None
        merged["reached_target"] = sum(bool(r.get("reached_target")) for r in rows)
        out[arm] = merged
    return out


# ---------------------------------------------------------------------------------------------
# sweeps


def sweep_overrides(args: argparse.Namespace, arm: str, seed: int) -> list[str]:
    strategy, extra = ARMS[arm]
    quick = list(QUICK_OVERRIDES) if args.quick else []
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
    from graft_hpo.space import load_space

    overrides = sweep_overrides(args, arm, seed)
    folder, tag = f"{arm}-s{seed}-{stamp}", f"{arm} s{seed}"
    sweep = timed_sweep(args, overrides, uri=uri, folder=folder, tag=tag)
    result = sweep.result
    trials = read_trials(uri, result.experiment, result.sweep_id, load_space(args.space).names)
    shared = result.totals.get("sweep_shared_selection_energy_kwh", 0.0)
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
        "energy_kwh": total(trials, "energy_kwh") + shared,
        "shared_selection_kwh": shared,
        "duration_s": sweep.wall_s,
        "epochs_trained": total(trials, "epochs_completed"),
        "selection_share_max": max(sel_share) if sel_share else None,
        "curve": incumbent_changes(trials, start_energy=shared),
    }


def retrain_cached(args: argparse.Namespace, params: Mapping[str, str], cache: dict) -> Json:
    key = json.dumps(dict(params), sort_keys=True)
    if key not in cache:
        say(f"[retrain] {dict(params)}")
        cache[key] = retrain(args.pipeline, common_overrides(args), params)
    return cache[key]


def run_all(args: argparse.Namespace) -> Json:
    import torch

    uri, stamp = open_store(args.out, [f"savings-{arm}" for arm in args.arms])
    # a discarded sweep pays the cold start (first worker processes, the stores' first writes)
    warm_up(args, uri, stamp)
    per_seed: dict[str, dict[str, Json]] = {}
    for seed in args.seeds:
        per_seed[str(seed)] = {arm: one_sweep(args, arm, seed, uri, stamp) for arm in args.arms}
    stop_ray()  # the retrainings get the machine to themselves
    torch.set_num_threads(args.threads)
    cache: dict[str, Json] = {}
    for runs in per_seed.values():
        for run in runs.values():
            for point in run["curve"]:
                point["test_acc"] = retrain_cached(args, point["params"], cache)["test_acc"]
            final = run["curve"][-1] if run["curve"] else {}
            run["test_acc"] = final.get("test_acc")
        ref = reference_point({a: r["trials"] for a, r in runs.items()})
        base_acc = runs[BASELINE]["test_acc"] if BASELINE in runs else None
        for run in runs.values():
            run["hypervolume"] = sweep_hypervolume(run["trials"], ref)
            target = None if base_acc is None else base_acc - TARGET_GAP
            energy, reached = (
                energy_to_target(run["curve"], target, run["energy_kwh"])
                if target is not None
                else (None, False)
            )
            run["energy_to_target_kwh"], run["reached_target"] = energy, reached
    return {
        "baseline": BASELINE,
        "recipe": RECIPE,
        "random_arm": RANDOM_ARM,
        "runs": summarize(per_seed),
        "seeds": per_seed,
        "tracking_uri": uri,
    }


def summarize(per_seed: Mapping[str, Mapping[str, Json]]) -> dict[str, Json]:
    """The table's rows: :func:`mean_runs` and each arm's ratios against the baseline's."""
    means = mean_runs(per_seed)
    base = means.get(BASELINE, {})
    for run in means.values():
        for key in ("energy_kwh", "duration_s"):
            top, bottom = base.get(key), run.get(key)
            run[f"{key}_ratio"] = top / bottom if top and bottom else None
    return means


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
        *head(
            "arm | energy (Wh) | energy ratio | wall (s) | wall ratio | epochs trained "
            "| shared selection (Wh) | retrained test acc (%) | hypervolume (acc x g) "
            "| energy to target (Wh) | seeds at target | max selection share"
        ),
    ]
    for arm, r in report["runs"].items():
        lines.append(
            f"| {arm} | {num(r['energy_kwh'], '.4f', 1000)} | {num(r['energy_kwh_ratio'])}x "
            f"| {num(r['duration_s'], '.1f')} | {num(r['duration_s_ratio'])}x "
            f"| {num(r['epochs_trained'], '.0f')} "
            f"| {num(r['shared_selection_kwh'], '.4f', 1000)} "
            f"| {num(r['test_acc'], '.2f', 100)} | {num(r['hypervolume'], '.4g', 1000)} "
            f"| {num(r['energy_to_target_kwh'], '.4f', 1000)} "
            f"| {r['reached_target']}/{len(report['seeds'])} "
            f"| {num(r['selection_share_max'], '.2f', 100)}% |"
        )
    lines += ["", "Per seed (retrained test acc %, hypervolume):", ""]
    for seed, runs in report["seeds"].items():
        cells = ", ".join(
            f"{arm} {num(r['test_acc'], '.2f', 100)} / {num(r['hypervolume'], '.3g', 1000)}"
            for arm, r in runs.items()
        )
        lines.append(f"- seed {seed}: {cells}")
    return "\n".join(lines)


def plot(report: Json, path: Path) -> None:
    seeds = report["seeds"]
    fig, axes = axes_row(len(seeds), 4.2, 3.8)
    for ax, (seed, runs) in zip(axes, seeds.items(), strict=True):
        for arm, run in runs.items():
            pts = [(1000 * p["energy_kwh"], 100 * p["test_acc"]) for p in run["curve"]]
            pts.append((1000 * run["energy_kwh"], pts[-1][1]) if pts else (0, 0))
            step_curve(ax, pts, marker="o", ms=3, label=arm)
        base = runs.get(BASELINE, {}).get("test_acc")
        if base is not None:
            target = 100 * (base - TARGET_GAP)
            ax.axhline(target, color="grey", ls="--", lw=0.8, label="target")
        ax.set_xscale("log")
        label(ax, f"search seed {seed}", "cumulative sweep energy (Wh)", title_size=9)
    axes[0].set_ylabel("incumbent retrained on full data: test acc (%)")
    axes[-1].legend(fontsize=7, loc="lower right")
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    add_sweep_options(parser, out="savings")
    parser.add_argument("--trials", type=positive_int, default=12, help="per sweep")
    parser.add_argument("--fraction", type=float, default=0.2, help="random/graft budget")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument(
        "--render", type=Path, default=None, metavar="JSON", help="re-render a saved --json report"
    )
    args = parser.parse_args(argv)
    if args.render is not None:  # the table again from the per-seed runs, nothing is run
        try:
            report = json.loads(args.render.read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"--render {str(args.render)!r} cannot be read: {exc}")
        report["runs"] = summarize(report["seeds"])
        print(markdown(report))
        return 0
    if BASELINE not in args.arms:
        parser.error(f"--arms must include {BASELINE!r}: every ratio is taken against it")
    if args.quick:
        args.trials = QUICK_TRIALS
    runs = [(args.pipeline, sweep_overrides(args, arm, 0)) for arm in args.arms]
    check_pipelines(parser, runs, spaces=True)
    args.out = args.out.resolve()
    return print_report(args, run_report(args, run_all), markdown, plot)


if __name__ == "__main__":
    raise SystemExit(main())
