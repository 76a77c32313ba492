"""Does a sweep over the noise filter find it? GRAFT against random on a noisy set's front.

Run from the repository root (about 15-20 minutes for 60 digits trials on 2 CPUs):

    .venv/bin/python benchmarks/noise_sweep.py --trials 60 --json \\
        > benchmarks/results/noise_sweep.md

Per search seed (``--seeds``), one sweep of the bundled pipeline (``--pipeline``, default
``digits``) over its own joint space with ``data.label_noise`` (``--noise``, default 0.2) on:
the digits space searches ``selection.strategy`` (``graft``, ``random``, ``full``,
``infobatch``) together with GRAFT's knobs, ``selection.noise_filter`` (``chance``,
``misfit``, ``none``) among them, and the optimizer and the model. Nothing is shaped for
either strategy: the pipeline's space, sampler and trial count as a user would run them.

Every trial trained to the end logs its clean ``test_acc`` (the test split is never noisy) and
its ``co2_kg``. Scored on (test_acc, co2_kg) of the finished trials (``--metric val_acc``
scores the noisy validation accuracy the search itself saw):

- the front of all finished trials, and of the GRAFT and random trials alone, by strategy;
- dominance: random trials with a GRAFT trial of at most their CO2 and at least their
  accuracy, and the reverse;
- at equal CO2: the best accuracy of each strategy's trials of at most that CO2, at every CO2
  of a GRAFT or random trial from the point where both have one; the share of those where
  GRAFT is at least random, and the mean gap (points);
- what the search picked: trials, mean and best accuracy per ``noise_filter``; the filters of
  the best GRAFT trials, of those on the front, and of the trials TPE chose after its random
  start-up.

Last stdout line with ``--json``: ``seeds`` -> seed -> ``score`` (the above) and ``trials``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._cli import add_json_line  # noqa: E402
from benchmarks._cli import add_overrides  # noqa: E402
from benchmarks._machine import json_safe  # noqa: E402
from benchmarks._machine import print_report  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import saved_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._stats import mean  # noqa: E402
from benchmarks._tables import check  # noqa: E402
from benchmarks._tables import goal_table  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._tables import num  # noqa: E402

Json = dict[str, Any]

FILTER = "selection.noise_filter"
STRATEGY = "selection.strategy"
TOP = 5  # the best GRAFT trials whose filters the report names
BASELINES = ("graft", "random", "full", "infobatch")  # the digits space's strategies
STARTUP = 10  # Optuna TPE's random start-up trials (the pipelines' sampler)


def finished(trials: list[Json], metric: str) -> list[Json]:
    """Trials trained to the end, with ``metric`` and a CO2 figure."""
    return [
        t
        for t in trials
        if t["status"] == "FINISHED"
        and not t.get("early_stopped")
        and t.get(metric) is not None
        and t.get("co2_kg") is not None
    ]


def strategy(trial: Json) -> str:
    return str(trial["params"].get(STRATEGY))


def noise_filter(trial: Json) -> str:
    """The GRAFT trial's filter; ``-`` for other strategies (the knob does not apply to them,
    though MLflow logs the pipeline's value)."""
    return str(trial["params"].get(FILTER, "-")) if strategy(trial) == "graft" else "-"


def front(trials: list[Json], metric: str) -> list[Json]:
    """The trials no other trial dominates on (``metric`` max, ``co2_kg`` min)."""
    from graft_hpo.pareto import pareto_mask

    if not trials:
        return []
    mask = pareto_mask([[t[metric], t["co2_kg"]] for t in trials], [True, False])
    return [t for t, m in zip(trials, mask, strict=True) if m]


def covered(these: list[Json], by: list[Json], metric: str) -> int:
    """How many of ``these`` have a trial in ``by`` with at most their CO2 and at least their
    ``metric`` (weak dominance: a tie counts)."""
    return sum(
        any(b["co2_kg"] <= t["co2_kg"] and b[metric] >= t[metric] for b in by) for t in these
    )


def best_within(trials: list[Json], co2: float, metric: str) -> float | None:
    """The best ``metric`` of the trials of at most ``co2``; None when there is none."""
    values = [t[metric] for t in trials if t["co2_kg"] <= co2]
    return max(values) if values else None


def equal_co2(graft: list[Json], rand: list[Json], metric: str) -> Json:
    """GRAFT's best accuracy against random's at every CO2 of either from where both have a
    trial: ``levels``, ``share`` where GRAFT >= random, ``gap_mean`` (GRAFT - random)."""
    if not graft or not rand:
        return {"levels": 0, "share": None, "gap_mean": None, "gap_min": None}
    start = max(min(t["co2_kg"] for t in graft), min(t["co2_kg"] for t in rand))
    levels = sorted({t["co2_kg"] for t in graft + rand if t["co2_kg"] >= start})
    gaps = [best_within(graft, c, metric) - best_within(rand, c, metric) for c in levels]  # type: ignore[operator]
    return {
        "levels": len(levels),
        "share": sum(g >= 0 for g in gaps) / len(gaps),
        "gap_mean": mean(gaps),
        "gap_min": min(gaps),
        "graft_cheapest": min(t["co2_kg"] for t in graft),
        "random_cheapest": min(t["co2_kg"] for t in rand),
    }


def by_filter(graft: list[Json], metric: str) -> dict[str, Json]:
    """Per ``noise_filter`` value: GRAFT trials, mean and best ``metric``."""
    out = {}
    for value in sorted({noise_filter(t) for t in graft}):
        scores = [t[metric] for t in graft if noise_filter(t) == value]
        out[value] = {"trials": len(scores), "mean": mean(scores), "best": max(scores)}
    return out


def score(trials: list[Json], metric: str) -> Json:
    """One sweep's numbers: fronts, dominance, equal-CO2 curves and the filters picked."""
    done = finished(trials, metric)
    graft = [t for t in done if strategy(t) == "graft"]
    rand = [t for t in done if strategy(t) == "random"]
    pair_front = front(graft + rand, metric)
    best = sorted(graft, key=lambda t: -t[metric])[:TOP]
    started = sorted(trials, key=lambda t: t.get("start_ms") or 0)
    tpe = [t for t in started[STARTUP:] if strategy(t) == "graft"]
    return {
        "finished": len(done),
        "strategies": dict(Counter(strategy(t) for t in done)),
        "front_strategies": dict(Counter(strategy(t) for t in front(done, metric))),
        "pair_front": dict(Counter(strategy(t) for t in pair_front)),
        "random_covered": [covered(rand, graft, metric), len(rand)],
        "graft_covered": [covered(graft, rand, metric), len(graft)],
        "equal_co2": equal_co2(graft, rand, metric),
        "best": {
            s: max((t[metric] for t in done if strategy(t) == s), default=None)
            for s in sorted({strategy(t) for t in done})
        },
        "by_filter": by_filter(graft, metric),
        "top_filters": [noise_filter(t) for t in best],
        "front_filters": [noise_filter(t) for t in pair_front if strategy(t) == "graft"],
        "tpe_filters": dict(Counter(noise_filter(t) for t in tpe)),
    }


def one_sweep(args: argparse.Namespace, seed: int, uri: str, stamp: str) -> list[Json]:
    from benchmarks._sweeps import read_trials
    from benchmarks._sweeps import timed_sweep
    from graft_hpo import load_pipeline
    from graft_hpo.sweep import load_space

    overrides = [f"data.label_noise={args.noise}", f"search.seed={seed}", *args.set]
    space = load_pipeline(args.pipeline, overrides=overrides).search.space
    assert space is not None, "the pipeline names no search space"
    sweep = timed_sweep(args, overrides, uri=uri, folder=f"s{seed}-{stamp}", tag=f"seed {seed}")
    result = sweep.result
    trials = read_trials(uri, result.experiment, result.sweep_id, load_space(space).names)
    say(f"seed {seed}: {len(trials)} trials in {sweep.wall_s:.0f} s")
    return trials


def run_all(args: argparse.Namespace) -> Json:
    from benchmarks._sweeps import open_store  # sets Ray/MLflow/codecarbon env first
    from benchmarks._sweeps import warm_up

    uri, stamp = open_store(args.out, [])
    warm_up(args, uri, stamp, overrides=[f"data.label_noise={args.noise}", *args.set])
    seeds: dict[str, Json] = {}
    for seed in args.seeds:
        trials = one_sweep(args, seed, uri, stamp)
        seeds[str(seed)] = {"score": score(trials, args.metric), "trials": trials}
        (args.out / "partial.json").write_text(json.dumps(json_safe({"seeds": seeds})))
    return {"seeds": seeds}


def goals(report: Json) -> list[Json]:
    """Issue 24's sweep goal per seed: at every CO2 where both strategies have a finished
    trial, the best GRAFT trial within it at least the best random one."""
    out = []
    for seed, per in report["seeds"].items():
        s = per["score"]
        eq = s["equal_co2"]
        out.append(
            check(
                "GRAFT >= random at equal CO2 (best trial within each CO2)",
                None if eq["share"] is None else eq["share"] == 1.0,
                f"share of CO2 levels {num(eq['share'], '.2f')} of {eq['levels']}; gap "
                f"mean {num(eq['gap_mean'], '+.1f', 100)}, min {num(eq['gap_min'], '+.1f', 100)}"
                f" pts; random trials covered by a GRAFT one {s['random_covered'][0]}/"
                f"{s['random_covered'][1]}",
                seed=seed,
            )
        )
    return out


def _mix(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"


def markdown(report: Json) -> str:
    args = report.get("args", {})
    metric = args.get("metric", "test_acc")
    spaces = [s.split("=", 1)[1] for s in args.get("set", []) if s.startswith("search.space=")]
    space = f"the space `{spaces[-1]}`" if spaces else "its own search space"
    lines = [
        "# noise_sweep: does a sweep with the noise filter beat random subsets at equal CO2?",
        "",
        f"Machine: {report.get('machine', {}).get('description')}; pipeline "
        f"`{args.get('pipeline')}` with `data.label_noise={args.get('noise')}`, {space}, "
        f"{args.get('trials')} trials per sweep; accuracy: `{metric}` (%), CO2 of each "
        f"trial (mg). Wall time {num(report.get('wall_s'), '.0f')} s.",
        "",
        *head(
            "seed | finished | strategies | front (all) | front (GRAFT + random) | "
            "random covered by GRAFT | GRAFT covered by random | best GRAFT / random / full / "
            "infobatch | equal CO2: share GRAFT >= random, mean gap (pts)"
        ),
    ]
    for seed, per in report["seeds"].items():
        s = per["score"]
        eq, b = s["equal_co2"], s["best"]
        lines.append(
            f"| {seed} | {s['finished']} | {_mix(s['strategies'])} | "
            f"{_mix(s['front_strategies'])} | {_mix(s['pair_front'])} | "
            f"{'/'.join(map(str, s['random_covered']))} | {'/'.join(map(str, s['graft_covered']))}"
            f" | {' / '.join(num(b.get(k), '.1f', 100) for k in BASELINES)}"
            f" | {num(eq['share'], '.2f')} of {eq['levels']}, {num(eq['gap_mean'], '+.1f', 100)} |"
        )
    lines += ["", "What the search picked for GRAFT (`selection.noise_filter`):", ""]
    lines += head(
        "seed | filter | trials | mean | best | top-5 GRAFT | GRAFT on the front | after start-up"
    )
    for seed, per in report["seeds"].items():
        s = per["score"]
        for i, (value, f) in enumerate(s["by_filter"].items()):
            extra = (
                f"{', '.join(s['top_filters'])} | {', '.join(s['front_filters']) or '-'} | "
                f"{_mix(s['tpe_filters'])}"
                if i == 0
                else " | | "
            )
            lines.append(
                f"| {seed if i == 0 else ''} | {value} | {f['trials']} | "
                f"{num(f['mean'], '.1f', 100)} | {num(f['best'], '.1f', 100)} | {extra} |"
            )
    lines += ["", "Every finished GRAFT and random trial, cheapest first:", ""]
    lines += head("seed | strategy | filter | fraction | accuracy | CO2 (mg)")
    for seed, per in report["seeds"].items():
        done = finished(per["trials"], metric)
        for t in sorted(done, key=lambda t: t["co2_kg"]):
            if strategy(t) in ("graft", "random"):
                lines.append(
                    f"| {seed} | {strategy(t)} | {noise_filter(t)} | "
                    f"{num(_float(t['params'].get('selection.fraction')), '.2f')} | "
                    f"{num(t[metric], '.1f', 100)} | {num(t['co2_kg'], '.3f', 1e6)} |"
                )
    lines += ["", "Goal (issue 24):", "", *goal_table(goals(report), ["seed"])]
    return "\n".join(lines) + "\n"


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="digits", help="bundled name or YAML path")
    parser.add_argument("--noise", type=float, default=0.2, help="data.label_noise")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="search seeds")
    parser.add_argument("--trials", type=int, default=60, help="trials per sweep")
    parser.add_argument(
        "--metric", choices=["test_acc", "val_acc"], default="test_acc", help="the accuracy"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_out" / "noise_sweep")
    parser.add_argument(
        "--render", type=Path, default=None, help="re-render a saved JSON report, run nothing"
    )
    add_overrides(parser, "every sweep")
    add_json_line(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.render is not None:  # the tables again, from a report's JSON (its last line)
        report = saved_report(args.render)
        if args.metric != report["args"].get("metric"):
            report["args"]["metric"] = args.metric
            for per in report["seeds"].values():
                per["score"] = score(per["trials"], args.metric)
        return print_report(args, report, markdown)
    return print_report(args, run_report(args, run_all), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
