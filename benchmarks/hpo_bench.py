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
by the sweeps (see :func:`benchmarks._trials.reference_point`); and full/graft and full/random
ratios of energy, CO2 and wall time. A time breakdown separates each trial's fixed overhead from
its training and selection time. Progress goes to stderr; the Markdown report goes to stdout,
then, with ``--json``, one JSON object as the last line. ``--plot FILE`` draws the best validation
accuracy so far against the cumulative energy, in the order the trials completed.

Every sweep writes to one MLflow store under ``--out`` (``<out>/mlruns/mlflow.db``, experiments
``hpo-bench-full``, ``hpo-bench-graft``, ``hpo-bench-random``); ``graft-hpo pareto
--tracking-uri ...`` can read them afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._cli import SPACES  # noqa: E402
from benchmarks._cli import add_sweep_options  # noqa: E402
from benchmarks._cli import check_pipelines  # noqa: E402
from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._machine import print_report  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._plot import STYLE  # noqa: E402
from benchmarks._plot import axes_row  # noqa: E402
from benchmarks._plot import label  # noqa: E402
from benchmarks._plot import pyplot  # noqa: E402
from benchmarks._plot import save_figure  # noqa: E402
from benchmarks._plot import step_curve  # noqa: E402
from benchmarks._sweeps import QUICK_TRIALS  # noqa: E402  (sets Ray/MLflow/codecarbon env)
from benchmarks._sweeps import common_overrides  # noqa: E402
from benchmarks._sweeps import open_store  # noqa: E402
from benchmarks._sweeps import read_trials  # noqa: E402
from benchmarks._sweeps import retrain  # noqa: E402
from benchmarks._sweeps import stop_ray  # noqa: E402
from benchmarks._sweeps import timed_sweep  # noqa: E402
from benchmarks._sweeps import warm_up  # noqa: E402
from benchmarks._tables import check  # noqa: E402
from benchmarks._tables import goal_table  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._tables import num  # noqa: E402
from benchmarks._trials import ACC_MARGIN  # noqa: E402
from benchmarks._trials import CO2_SCALE  # noqa: E402
from benchmarks._trials import RATIO_KEYS  # noqa: E402
from benchmarks._trials import best_so_far_curve  # noqa: E402
from benchmarks._trials import best_trial  # noqa: E402
from benchmarks._trials import ratio_table  # noqa: E402
from benchmarks._trials import reference_point  # noqa: E402
from benchmarks._trials import sweep_hypervolume  # noqa: E402
from benchmarks._trials import time_breakdown  # noqa: E402
from benchmarks._trials import total  # noqa: E402
from graft_hpo.config import load_pipeline  # noqa: E402
from graft_hpo.space import load_space  # noqa: E402
from graft_hpo.trial import run_trial  # noqa: E402

Json = dict[str, Any]

SWEEPS = ("full", "graft", "random", "infobatch")  # infobatch: selection.prune_ratio, not a budget
GOAL_RATIO = 3.0
GOAL_TEST_GAP_PTS = 1.0

# ---------------------------------------------------------------------------------------------
# sweeps


def space_for(args: argparse.Namespace, strategy: str) -> Path:
    return (args.joint_space if args.joint and strategy == "graft" else args.space).resolve()


def experiment_for(args: argparse.Namespace, strategy: str) -> str:
    return f"hpo-bench-{strategy}" + ("-joint" if args.joint and strategy == "graft" else "")


def sweep_overrides(args: argparse.Namespace, strategy: str) -> list[str]:
    """The sweep's overrides: what all of them share, then what makes this one what it is."""
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


def one_sweep(args: argparse.Namespace, strategy: str, uri: str, stamp: str) -> Json:
    overrides = sweep_overrides(args, strategy)
    config = load_pipeline(args.pipeline, overrides=overrides)  # fail early, before timing
    names = load_space(space_for(args, strategy)).names
    sweep = timed_sweep(args, overrides, uri=uri, folder=f"{strategy}-{stamp}", tag=strategy)
    result = sweep.result
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
        "energy_kwh": total(trials, "energy_kwh"),
        "co2_kg": total(trials, "co2_kg"),
        "duration_s": sweep.wall_s,
        "load_avg_1min": sweep.load_avg_1min,  # at the sweep's start and end
        "time": time_breakdown(
            trials,
            sweep_start_ms=sweep.start_ms,
            sweep_end_ms=sweep.end_ms,
            max_concurrent=config.search.max_concurrent,
        ),
        "trials": trials,
    }


def run_all(args: argparse.Namespace) -> Json:
    # One-off costs out of the first sweep's clock: Ray's start, the store's creation,
    # matplotlib's import (the front's plot at each sweep's end), cold imports in the first
    # trial processes (the warm-up sweep).
    uri, stamp = open_store(args.out, [experiment_for(args, s) for s in args.sweeps])
    with contextlib.suppress(ImportError):
        pyplot()
    if args.warmup:
        warm_up(args, uri, stamp)

    runs: dict[str, Json] = {}
    for strategy in args.sweeps:
        runs[strategy] = r = one_sweep(args, strategy, uri, stamp)
        say(
            f"[{strategy}] done in {r['duration_s']:.1f}s: best val_acc {r['best_val_acc']}, "
            f"{1000 * r['energy_kwh']:.4f} Wh"
        )
    stop_ray()  # the retraining gets the machine to itself

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
        say(f"[{strategy}] retraining {run['best_params']}")
        run["retrain"] = retrain(args.pipeline, common_overrides(args), run["best_params"])
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
    fg = ratios.get("full/graft", {})
    for key, what in (("energy_kwh", "energy"), ("duration_s", "wall time")):
        r = fg.get(key)
        checks.append(
            check(
                f"graft sweep at least {GOAL_RATIO:g}x less {what} than full",
                None if r is None else r >= GOAL_RATIO,
                "not run" if r is None else f"full/graft {r:.2f}x",
            )
        )
    full_t = runs.get("full", {}).get("test_acc")
    graft_t = runs.get("graft", {}).get("test_acc")
    if full_t is not None and graft_t is not None:
        gap = 100 * (full_t - graft_t)
        checks.append(
            check(
                f"graft's retrained test acc within {GOAL_TEST_GAP_PTS:g} pt of full's",
                gap <= GOAL_TEST_GAP_PTS,
                f"{100 * graft_t:.2f}% vs {100 * full_t:.2f}% (gap {gap:+.2f} pts)",
            )
        )
    else:
        goal = f"graft's test acc within {GOAL_TEST_GAP_PTS:g} pt of full's"
        checks.append(check(goal, None, "not run"))
    hv_g = runs.get("graft", {}).get("hypervolume")
    hv_r = runs.get("random", {}).get("hypervolume")
    missing = hv_g is None or hv_r is None
    detail = "not run" if missing else f"{hv_g:.4g} vs {hv_r:.4g}"
    checks.append(check("graft hypervolume > random's", None if missing else hv_g > hv_r, detail))
    return checks


def _fraction(run: Mapping[str, Any]) -> str:
    if run.get("fraction_searched"):
        return "searched"
    if run.get("prune_ratio") is not None:
        return f"prune {run['prune_ratio']:g}"
    return "1" if run.get("fraction") is None else f"{run['fraction']:g}"


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
        f"co2 {num(ref['co2_kg'], '.4g', 1000)} g ({CO2_SCALE} x the largest trial's).",
        "",
        *head(
            "sweep | fraction | trials (ok/failed) | best val acc (%) | retrained test acc (%) "
            "| wall time (s) | energy (Wh) | CO2 (g) | hypervolume (acc x g) "
            "| retrain: time (s) / energy (Wh) / CO2 (g) | load (start/end)"
        ),
    ]
    for name, r in runs.items():
        c, rt = r["counts"], r.get("retrain") or {}
        lines.append(
            f"| {name} | {_fraction(r)} "
            f"| {c.get('FINISHED', 0)}/{c.get('FAILED', 0)} "
            f"| {num(r['best_val_acc'], '.2f', 100)} | {num(r['test_acc'], '.2f', 100)} "
            f"| {r['duration_s']:.1f} | {1000 * r['energy_kwh']:.4f} | {1000 * r['co2_kg']:.4f} "
            f"| {num(r['hypervolume'], '.4g', 1000)} "
            f"| {num(rt.get('duration_s'), '.1f')} / {num(rt.get('energy_kwh'), '.4f', 1000)} "
            f"/ {num(rt.get('co2_kg'), '.4f', 1000)} "
            f"| {'/'.join(num(x, '.1f') for x in r['load_avg_1min'])} |"
        )
    lines += ["", *head("ratio | energy | CO2 | wall time")]
    if not report["ratios"]:
        lines.append("| (the full sweep was not run) | - | - | - |")
    for name, row in report["ratios"].items():
        cells = " | ".join(num(row.get(k)) + "x" for k in RATIO_KEYS)
        lines.append(f"| {name} | {cells} |")
    lines += [
        "",
        "Where the time goes (s; per trial: medians):",
        "",
        *head(
            "sweep | startup | launch gap / trial | codecarbon / trial | MLflow / trial "
            "| training / trial | selection / trial | finish | sum of trial durations "
            "| sum training | sum selection"
        ),
    ]
    for name, r in runs.items():
        t = r["time"]
        lines.append(
            f"| {name} | {num(t['startup_s'], '.1f')} | {num(t['launch_gap_s'], '.1f')} "
            f"| {num(t['measure_s'])} | {num(t['mlflow_s'])} "
            f"| {num(t['train_s'])} | {num(t['selection_s'])} "
            f"| {num(t['finish_s'], '.1f')} | {t['sum_duration_s']:.1f} "
            f"| {t['sum_train_s']:.1f} | {t['sum_selection_s']:.1f} |"
        )
    failed = [(n, t) for n, r in runs.items() for t in r["trials"] if t["status"] == "FAILED"]
    if failed:
        lines += ["", "Failed trials (their energy counts):", ""]
        lines += [f"- {n} {t['run_id'][:8]} {t['params']}: {t['error']}" for n, t in failed]
    lines += ["", *goal_table(report["goals"])]
    return "\n".join(lines)


def plot(report: Json, path: Path) -> None:
    fig, (ax,) = axes_row(1, 6.5, 4.2)
    for name, run in report["runs"].items():
        pts = [(1000 * e, 100 * b) for e, b in run["curve"] if b is not None]
        if pts:
            step_curve(
                ax, pts, color=STYLE.get(name, (None, None))[1], label=name, marker="o", ms=4
            )
    a = report["args"]
    label(
        ax,
        f"{a['pipeline']}: {a['trials']} trials per sweep, best-so-far in completion order",
        "cumulative energy of the sweep's trials (Wh, codecarbon)",
        "best validation accuracy so far (%)",
        legend="lower right",
    )
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    add_sweep_options(parser, out="hpo_bench")
    parser.add_argument("--trials", type=positive_int, default=None, help="per sweep; default 12")
    parser.add_argument(
        "--fraction", type=float, default=None, help="graft/random budget; default the pipeline's"
    )
    parser.add_argument("--seed", type=int, default=0, help="search.seed of every sweep")
    parser.add_argument("--sweeps", nargs="+", choices=SWEEPS, default=list(SWEEPS))
    parser.add_argument("--joint", action="store_true", help="graft also searches its budget")
    parser.add_argument("--joint-space", type=Path, default=SPACES / "mnist_joint.yaml")
    parser.add_argument(
        "--hv-acc",
        choices=["min", "zero"],
        default="min",
        help="reference accuracy of the hypervolume: min finished val_acc - 0.01, or 0",
    )
    parser.add_argument(
        "--no-warmup", dest="warmup", action="store_false", help="skip the warm-up sweep"
    )
    args = parser.parse_args(argv)
    if args.trials is None:
        args.trials = QUICK_TRIALS if args.quick else 12
    check_pipelines(
        parser, [(args.pipeline, sweep_overrides(args, s)) for s in args.sweeps], spaces=True
    )
    args.out = args.out.resolve()
    report = run_report(args, run_all)
    report["goals"] = goals(report)
    return print_report(args, report, markdown, plot)


if __name__ == "__main__":
    raise SystemExit(main())
