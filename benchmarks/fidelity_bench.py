"""Rank-fidelity benchmark: do subset trials rank configurations as full-data trials do?

Run from the repository root:

    .venv/bin/python benchmarks/fidelity_bench.py --json > benchmarks/_out/fidelity.txt
    head -n -1 benchmarks/_out/fidelity.txt > benchmarks/results/fidelity.md
    tail -n 1 benchmarks/_out/fidelity.txt > benchmarks/results/fidelity.json
    .venv/bin/python benchmarks/fidelity_bench.py --quick   # 4 configs, 3 epochs, budget 0.1

``--configs`` (16) configurations of the model parameters of ``search_spaces/mnist.yaml``
(``MODEL_PARAMS``) are drawn from a numpy Generator seeded by ``--seed``: log-uniform where
``log: true``, on the ``step`` grid, uniform over choices; floats kept to 4 significant digits.
Each is trained with the bundled ``mnist`` pipeline (MNIST-5k, no download) by
:func:`graft_hpo.run_trial` (no MLflow, CPU, the pipeline's ``train.seed``, codecarbon off
unless ``--emissions``) on the full data, and at every budget ``selection.fraction``
(``--budgets``, 0.05 0.1 0.2) with every subset arm of ``ARMS`` (``--arms``); ``--workers``
processes train at once, with one torch thread each. Arms with ``selection.scope=sweep`` train
on prefixes of ONE ranking, made first from the base pipeline (not a sampled configuration) by
:func:`graft_hpo.proxy.proxy_ranking`, as a sweep does.

Per (budget, arm), across the configurations: Kendall's tau-b and Spearman's rho of subset
``val_acc`` against full ``val_acc`` (``scipy.stats``, ties handled), and the top-1 regret: the
best full ``val_acc`` minus the full ``val_acc`` of the arm's first-ranked configuration (a tie
for first counts as the mean over the tie: a random pick); and whether each graft arm's Kendall
is at least its control's (``CONTROLS``). Progress goes to stderr, Markdown to stdout; ``--json``
prints one JSON object as the last stdout line.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._cli import add_epochs  # noqa: E402
from benchmarks._cli import add_json_line  # noqa: E402
from benchmarks._cli import add_overrides  # noqa: E402
from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._machine import interpreter  # noqa: E402
from benchmarks._machine import print_report  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._tables import num  # noqa: E402

Json = dict[str, Any]

PIPELINE = "mnist"
SPACE = str(ROOT / "benchmarks" / "spaces" / "mnist_model.yaml")  # lr 1e-3..0.3, wd, bs, width
MODEL_PARAMS = ("train.lr", "train.weight_decay", "train.batch_size", "model.options.width")
BUDGETS = (0.05, 0.1, 0.2)
# the shared ranking's overrides (after the common ones): the base pipeline's hyperparameters
RANKING = ["selection.strategy=graft", "selection.scope=sweep"]
NO_WARMUP = "selection.warm_start_epochs=0"
WARMUP = "selection.warm_start_epochs=1"  # per-trial GRAFT: one full-data epoch, then select
# subset arm -> overrides on top of selection.fraction=<budget>; add an arm in one line here
ARMS: dict[str, list[str]] = {
    "graft": ["selection.strategy=graft", "selection.scope=trial", WARMUP],
    "random": ["selection.strategy=random", WARMUP],
    "graft-sweep": [*RANKING, NO_WARMUP],  # a prefix of the shared ranking, no warm-up
    "random-nowarm": ["selection.strategy=random", NO_WARMUP],
}
# graft arm -> the random arm with the same warm-up: the comparison the verdict makes
CONTROLS = {"graft": "random", "graft-sweep": "random-nowarm"}
FULL = ["selection.strategy=full"]

# ---------------------------------------------------------------------------------------------
# pure helpers (tested in tests/benchmarks/test_fidelity_bench.py)


def budget_key(budget: float) -> str:
    """``0.05`` -> ``"0.05"``, ``0.1`` -> ``"0.1"``: the JSON key of a budget."""
    return f"{budget:g}"


def arm_uses_ranking(arm: str) -> bool:
    """Whether ``arm``'s trainings take a prefix of the shared ranking (scope sweep)."""
    from graft_hpo import load_pipeline
    from graft_hpo.selection import uses_ranking

    return uses_ranking(load_pipeline(PIPELINE, overrides=ARMS[arm]).selection)


def sample_value(spec: Any, rng: np.random.Generator) -> Any:
    """One value of a :class:`graft_hpo.sweep.ParamSpec` (its ``when`` is ignored)."""
    if spec.type == "categorical":
        return spec.choices[int(rng.integers(len(spec.choices)))]
    low, high = spec.low, spec.high
    if spec.log:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
        value = min(max(value, low), high)
        return round(value) if spec.type == "int" else float(f"{value:.4g}")
    step = spec.step if spec.step is not None else (1 if spec.type == "int" else None)
    if step is None:
        return float(f"{rng.uniform(low, high):.4g}")
    value = low + step * int(rng.integers(math.floor((high - low) / step + 1e-9) + 1))
    return int(value) if spec.type == "int" else float(f"{value:.10g}")


def sample_configs(specs: Sequence[Any], n: int, seed: int) -> list[Json]:
    """``n`` configurations ``{name: value}`` drawn in spec order from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return [{s.name: sample_value(s, rng) for s in specs} for _ in range(n)]


def run_overrides(
    params: Json, arm: list[str], budget: float | None, extra: list[str]
) -> list[str]:
    """The dotted overrides of one training: params, the arm, its budget, then ``extra``."""
    out = [f"{k}={v}" for k, v in params.items()] + list(arm)
    if budget is not None:
        out.append(f"selection.fraction={budget}")
    return out + list(extra)


def rank_correlations(full: Sequence[float], subset: Sequence[float]) -> tuple[float, float]:
    """(Kendall tau-b, Spearman rho) of ``subset`` vs ``full``; NaN if either is constant."""
    from scipy import stats

    if len(full) < 2 or len(set(full)) < 2 or len(set(subset)) < 2:
        return math.nan, math.nan
    tau, rho = stats.kendalltau(full, subset), stats.spearmanr(full, subset)
    return float(tau.statistic), float(rho.statistic)


def top1_regret(full: Sequence[float], subset: Sequence[float]) -> float:
    """max(full) minus full's score of the subset's top pick (mean over a tie for first)."""
    top = max(subset)
    picked = [f for f, s in zip(full, subset, strict=True) if s == top]
    return max(full) - statistics.fmean(picked)


def fidelity(full: Sequence[float | None], subset: Sequence[float | None]) -> Json:
    """Kendall, Spearman and regret over the configurations where both runs finished."""
    pairs = [(f, s) for f, s in zip(full, subset, strict=True) if f is not None and s is not None]
    if not pairs:
        return {"kendall": math.nan, "spearman": math.nan, "regret": math.nan, "n": 0}
    fs, ss = [p[0] for p in pairs], [p[1] for p in pairs]
    kendall, spearman = rank_correlations(fs, ss)
    regret = top1_regret(fs, ss)
    return {
        "kendall": kendall,
        "spearman": spearman,
        "regret": regret,  # in val_acc units (0-1)
        "regret_pts": 100 * regret,
        "n": len(pairs),
        "subset_mean_acc": statistics.fmean(ss),
    }


def _ge(a: float, b: float) -> bool | None:
    return None if math.isnan(a) or math.isnan(b) else a >= b


def assemble(
    params: list[Json],
    accs: dict[str, list[float | None]],
    budgets: Sequence[float],
    arms: Sequence[str],
) -> Json:
    """``accs[run_key]`` (``"full"``, ``"0.1/graft"``: one val_acc per config, None if failed)
    -> ``{"budgets": {"0.1": {arm: fidelity}}, "configs": [...], "graft_ge_control": {...}}``:
    per graft arm of ``CONTROLS`` run with its control, whether its Kendall >= the control's
    per budget (None where either is undefined) and at all budgets."""
    out: Json = {"budgets": {}, "configs": [], "graft_ge_control": {}}
    for b in map(budget_key, budgets):
        out["budgets"][b] = {a: fidelity(accs["full"], accs[f"{b}/{a}"]) for a in arms}
    for i, p in enumerate(params):
        subsets = {b: {a: accs[f"{b}/{a}"][i] for a in arms} for b in out["budgets"]}
        out["configs"].append({"index": i, "params": p, "full": accs["full"][i], **subsets})
    for arm, control in CONTROLS.items():
        if {arm, control} <= set(arms):
            rows = out["budgets"].items()
            per = {b: _ge(r[arm]["kendall"], r[control]["kendall"]) for b, r in rows}
            all_ge = all(v is True for v in per.values())
            out["graft_ge_control"][arm] = {"control": control, "per_budget": per, "all": all_ge}
    return out


# ---------------------------------------------------------------------------------------------
# runs


def _init_worker() -> None:
    """Each worker: stdout -> stderr (stdout holds the report only), one torch thread."""
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    import torch

    torch.set_num_threads(1)


def train_one(overrides: list[str], ranking: Any = None) -> Json:
    """One :func:`graft_hpo.run_trial` of the pipeline (on the shared ``ranking``, if given)."""
    from graft_hpo import load_pipeline
    from graft_hpo import run_trial

    start = time.perf_counter()
    config = load_pipeline(PIPELINE, overrides=overrides)
    result = run_trial(config, tracking=False, ranking=ranking)
    acc = result.metrics.get("val_acc") if result.status == "FINISHED" else None
    wall = time.perf_counter() - start
    return {"val_acc": acc, "status": result.status, "error": result.error, "wall_s": wall}


def shared_ranking(extra: list[str], arms: list[str]) -> tuple[Any, Json]:
    """The sweep-level ranking of the base pipeline for ``arms``, with one torch thread as a
    trial has (the main process trains nothing else), and a summary for the report."""
    import torch

    from graft_hpo import load_pipeline
    from graft_hpo.proxy import proxy_ranking

    overrides = [*extra, *RANKING]
    torch.set_num_threads(1)
    start = time.perf_counter()
    ranking = proxy_ranking(load_pipeline(PIPELINE, overrides=overrides))
    wall = time.perf_counter() - start
    say(f"shared ranking: {len(ranking)} samples in {wall:.1f} s")
    summary = {"arms": arms, "overrides": overrides, "wall_s": wall, "stats": ranking.stats}
    return ranking, summary


def _git_state() -> Json:
    """HEAD and the library files with uncommitted changes: what the trainings ran."""

    def git(*cmd: str) -> list[str]:
        out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False)
        return out.stdout.splitlines()

    dirty = [line[3:] for line in git("status", "--porcelain", "graft_hpo")]
    return {"head": (git("rev-parse", "HEAD") or [""])[0], "dirty": dirty}


def run_all(args: argparse.Namespace) -> Json:
    from graft_hpo.space import load_space

    git = _git_state()
    space = {s.name: s for s in load_space(SPACE).params}
    params = sample_configs([space[n] for n in MODEL_PARAMS], args.configs, args.seed)
    extra = ["train.device=cpu", *([] if args.emissions else ["emissions.enabled=false"])]
    extra += [f"train.epochs={args.epochs}"] if args.epochs else []
    extra += args.set
    jobs = [("full", i, run_overrides(p, FULL, None, extra)) for i, p in enumerate(params)]
    for b in sorted(args.budgets, reverse=True):  # longest runs first
        for a in args.arms:
            key = f"{budget_key(b)}/{a}"
            jobs += [(key, i, run_overrides(p, ARMS[a], b, extra)) for i, p in enumerate(params)]
    accs: dict[str, list[float | None]] = {k: [None] * len(params) for k, _, _ in jobs}
    ranked = [a for a in args.arms if arm_uses_ranking(a)]
    ranking, summary = shared_ranking(extra, ranked) if ranked else (None, None)
    runs: list[Json] = []
    ctx = get_context("spawn")  # no fork of a process that has touched torch's thread pools
    with ProcessPoolExecutor(args.workers, mp_context=ctx, initializer=_init_worker) as pool:
        futures = {}
        for key, i, ov in jobs:  # key: "full" or "<budget>/<arm>"
            shared = ranking if key.rpartition("/")[2] in ranked else None
            futures[pool.submit(train_one, ov, shared)] = (key, i, ov)
        for done, future in enumerate(as_completed(futures), 1):
            key, i, ov = futures[future]
            run = {"run": key, "config": i, "overrides": ov, **future.result()}
            runs.append(run)
            accs[key][i] = run["val_acc"]
            acc = "failed" if run["val_acc"] is None else f"{100 * run['val_acc']:.1f}%"
            say(f"[{done}/{len(jobs)}] {key} config {i}: {acc} in {run['wall_s']:.1f} s")
    failed = [r for r in runs if r["status"] != "FINISHED"]
    out = assemble(params, accs, args.budgets, args.arms)
    return {**out, "ranking": summary, "failed": failed, "git": git}


# ---------------------------------------------------------------------------------------------
# report


def _na(x: Any, fmt: str, scale: float = 1.0) -> str:
    """A number cell; "n/a" where it is undefined (a constant column has no rank correlation)."""
    return num(x, fmt, scale, missing="n/a")


def markdown(report: Json) -> str:
    m, a = report["machine"], report["args"]
    full = [c["full"] for c in report["configs"] if c["full"] is not None]
    lines = [
        "# Rank fidelity: do subset trials rank configurations as full-data trials do?",
        "",
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']}, "
        f"Python {m['python']}, 1-min load at start {_na(m['load_avg_1min_at_start'], '.2f')}.",
        f"Command: `{report['command']}`; wall time {report['wall_s']:.0f} s "
        f"({a['workers']} workers, 1 torch thread each); library at "
        f"{report['git']['head'][:10] or '?'}"
        + (" with uncommitted changes." if report["git"]["dirty"] else "."),
        f"{a['configs']} configurations of {', '.join(MODEL_PARAMS)} (seed {a['seed']}), "
        f"pipeline `{PIPELINE}`, epochs {a['epochs'] or 'from the pipeline'}. Full val_acc "
        f"{100 * min(full):.1f}–{100 * max(full):.1f}% (spread "
        f"{100 * (max(full) - min(full)):.1f} pts).",
        "",
        *head(
            "budget | arm | Kendall tau | Spearman rho | top-1 regret (pts) | mean subset acc (%)"
        ),
    ]
    for b, row in report["budgets"].items():
        for arm, r in row.items():
            lines.append(
                f"| {b} | {arm} | {_na(r['kendall'], '+.3f')} | {_na(r['spearman'], '+.3f')} "
                f"| {_na(r.get('regret_pts'), '.1f')} "
                f"| {_na(r.get('subset_mean_acc'), '.1f', 100)} |"
            )
    lines.append("")
    words = {True: "yes", False: "no", None: "undefined"}
    for arm, g in report["graft_ge_control"].items():
        per = ", ".join(f"{b}: {words[ok]}" for b, ok in g["per_budget"].items())
        verdict, control = "yes" if g["all"] else "no", g["control"]
        lines.append(f"{arm}'s Kendall >= {control}'s at every budget: **{verdict}** ({per}).")
    if r := report.get("ranking"):
        lines.append(
            f"Shared ranking ({', '.join(r['arms'])}): a proxy of the base pipeline, "
            f"{r['stats']['proxy_epochs']:.0f} full-data epochs, ranked the data once in "
            f"{r['wall_s']:.1f} s before the trainings."
        )
    for r in report["failed"]:
        lines.append(f"- FAILED {r['run']} config {r['config']}: {r['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--configs", type=positive_int, default=None, help="configurations (16)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the configurations")
    parser.add_argument("--budgets", type=float, nargs="+", default=None, help="0.05 0.1 0.2")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    add_epochs(parser)
    parser.add_argument("--workers", type=int, default=2, help="trainings at once")
    parser.add_argument("--emissions", action="store_true", help="keep codecarbon on")
    add_overrides(parser, "every run")
    parser.add_argument("--quick", action="store_true", help="4 configs, 3 epochs, budget 0.1")
    add_json_line(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.configs, args.epochs = args.configs or 4, args.epochs or 3
        args.budgets = args.budgets or [0.1]
    args.configs, args.budgets = args.configs or 16, args.budgets or list(BUDGETS)
    if args.configs < 2 or args.workers < 1:
        parser.error("--configs must be >= 2 and --workers >= 1")
    report = run_report(args, run_all)
    given = sys.argv[1:] if argv is None else argv
    report["command"] = shlex.join([interpreter(), "benchmarks/fidelity_bench.py", *given])
    return print_report(args, report, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
