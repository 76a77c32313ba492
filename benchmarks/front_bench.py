"""Which scheduler finds the accuracy-vs-CO2 front: none, ASHA on val_acc, or MO-ASHA?

Run from the repository root (about 10 minutes per seed on 2 CPUs):

    .venv/bin/python benchmarks/front_bench.py --seeds 0 1 2 3 4 --json \\
        --plot docs/img/front_bench.png > benchmarks/results/front.md

In one process, per search seed, sweeps of the bundled ``mnist`` pipeline over its own joint
space (``search_spaces/mnist.yaml``: lr, weight decay, batch size, width, and the strategy
``graft``/``random``/``infobatch``/``full`` with its budget), the same TPE seed, trial count and
concurrency, one arm per scheduler (see :data:`ARMS`):

- ``fifo``: no scheduler, every trial trains all its epochs;
- ``asha``: Ray's ASHA on ``val_acc`` (grace 2, reduction 3), stopped trials told to Optuna as
  COMPLETE with their truncated values (the pipeline before MO-ASHA);
- ``moasha-<report>``: MO-ASHA on (val_acc, co2_kg) with the same rungs, a stopped trial told
  to Optuna as ``projected`` (CO2 scaled to the full epochs), ``complete`` or ``pruned``
  (``search.stopped_report``); ``--reports`` picks which.

The front is scored on data no choice was made on: every trial trained to the end logs
``test_acc`` (one pass over the test split, inside its measured energy), and the hypervolume of
the finished trials' (test_acc, co2_kg) is taken against one reference point per seed shared by
all arms (test_acc 0, 1.1 x the largest CO2 of any finished trial of that seed). The any-time
curve: trials in completion order, cumulative sweep energy (the shared ranking's, then every
trial's, stopped ones included) against the hypervolume of the trials finished so far.

Last stdout line with ``--json``: ``arms`` -> name -> ``energy_kwh``, ``duration_s``,
``hypervolume``, ``front_size``, ``finished``, ``strategies`` (name -> trials),
``front_strategies``: means over seeds (strategy counts summed); ``seeds`` -> seed -> the same
per arm, with the trials and the any-time curve.
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
from benchmarks._cli import add_plot  # noqa: E402
from benchmarks._cli import existing_file  # noqa: E402
from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._machine import json_safe  # noqa: E402
from benchmarks._machine import print_report  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import saved_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._plot import axes_row  # noqa: E402
from benchmarks._plot import save_figure  # noqa: E402
from benchmarks._plot import step_curve  # noqa: E402
from benchmarks._stats import mean  # noqa: E402
from benchmarks._stats import std  # noqa: E402
from benchmarks._sweeps import open_store  # noqa: E402  (sets Ray/MLflow/codecarbon env)
from benchmarks._sweeps import read_trials  # noqa: E402
from benchmarks._sweeps import timed_sweep  # noqa: E402
from benchmarks._sweeps import warm_up  # noqa: E402
from benchmarks._tables import check  # noqa: E402
from benchmarks._tables import goal_table  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._tables import num  # noqa: E402

Json = dict[str, Any]

RUNGS = "grace_period: 2, reduction_factor: 3"
ARMS: dict[str, list[str]] = {
    "fifo": ["search.scheduler=null"],
    "asha": [
        f"search.scheduler={{type: asha, metric: val_acc, mode: max, {RUNGS}}}",
        "search.stopped_report=complete",
    ],
}
REPORTS = ("projected", "complete", "pruned")
for _report in REPORTS:
    ARMS[f"moasha-{_report}"] = [
        f"search.scheduler={{type: moasha, {RUNGS}}}",
        f"search.stopped_report={_report}",
    ]
MAXIMIZE = [True, False]  # test_acc, co2_kg


def finished(trials: list[Json]) -> list[Json]:
    """Trials trained to the end, with a test score and a CO2 figure."""
    return [
        t
        for t in trials
        if t["status"] == "FINISHED"
        and not t["early_stopped"]
        and t.get("test_acc") is not None
        and t.get("co2_kg") is not None
    ]


def front_of(trials: list[Json], reference: list[float]) -> tuple[float, list[Json]]:
    """Hypervolume of the finished trials' (test_acc, co2_kg) and the trials on their front."""
    from graft_hpo.pareto import hypervolume_2d
    from graft_hpo.pareto import pareto_mask

    done = finished(trials)
    if not done:
        return 0.0, []
    points = [[t["test_acc"], t["co2_kg"]] for t in done]
    mask = pareto_mask(points, MAXIMIZE)
    return hypervolume_2d(points, reference, MAXIMIZE), [
        t for t, m in zip(done, mask, strict=True) if m
    ]


def anytime(trials: list[Json], shared_kwh: float, reference: list[float]) -> list[list[float]]:
    """``[cumulative sweep kWh, hypervolume so far]`` after each trial, in completion order."""
    spent, curve = shared_kwh, []
    for i, trial in enumerate(trials):
        spent += trial.get("energy_kwh") or 0.0
        curve.append([spent, front_of(trials[: i + 1], reference)[0]])
    return curve


def one_sweep(args: argparse.Namespace, arm: str, seed: int, uri: str, stamp: str) -> Json:
    from graft_hpo.space import load_space

    overrides = [*ARMS[arm], f"search.seed={seed}", *args.set]
    sweep = timed_sweep(args, overrides, uri=uri, folder=f"{arm}-s{seed}-{stamp}", tag=arm)
    result = sweep.result
    names = load_space(result_space(args)).names
    trials = read_trials(uri, result.experiment, result.sweep_id, names)
    return {
        "sweep_id": result.sweep_id,
        "trials": trials,
        "shared_kwh": result.totals.get("sweep_shared_selection_energy_kwh", 0.0),
        "energy_kwh": result.totals.get("sweep_energy_kwh"),
        "duration_s": sweep.wall_s,
    }


def result_space(args: argparse.Namespace) -> str:
    from graft_hpo import load_pipeline

    space = load_pipeline(args.pipeline, overrides=list(args.set)).search.space
    assert space is not None
    return space


def score(run: Json, reference: list[float]) -> Json:
    """An arm's numbers for one seed against the seed's shared reference point."""
    hv, front = front_of(run["trials"], reference)
    return {
        "energy_kwh": run["energy_kwh"],
        "duration_s": run["duration_s"],
        "hypervolume": hv,
        "front_size": len(front),
        "finished": len(finished(run["trials"])),
        "strategies": dict(Counter(_strategy(t) for t in run["trials"])),
        "front_strategies": dict(Counter(_strategy(t) for t in front)),
        "anytime": anytime(run["trials"], run["shared_kwh"], reference),
        "front": [
            [t["test_acc"], t["co2_kg"], t["params"].get("selection.strategy")] for t in front
        ],
        "trials": run["trials"],
    }


def _strategy(trial: Json) -> str:
    return str(trial["params"].get("selection.strategy"))


def arms_of(args: argparse.Namespace, seed: int) -> list[str]:
    """The arms of one seed: fifo, asha, and MO-ASHA with each report (the first report only
    on seeds outside ``--variant-seeds``)."""
    variants = args.variant_seeds is None or seed in args.variant_seeds
    reports = args.reports if variants else args.reports[:1]
    return ["fifo", "asha", *(f"moasha-{r}" for r in reports)]


def run_all(args: argparse.Namespace) -> Json:
    uri, stamp = open_store(args.out, [])
    warm_up(args, uri, stamp, overrides=["search.scheduler=null", *args.set])
    seeds: dict[str, Json] = {}
    arms = arms_of(args, args.seeds[0])
    for seed in args.seeds:
        runs = {}
        for arm in arms_of(args, seed):
            say(f"seed {seed}: {arm}")
            runs[arm] = one_sweep(args, arm, seed, uri, stamp)
        co2 = [t["co2_kg"] for r in runs.values() for t in finished(r["trials"])]
        reference = [0.0, 1.1 * max(co2, default=1.0)]
        seeds[str(seed)] = {arm: score(run, reference) for arm, run in runs.items()}
        seeds[str(seed)]["reference"] = reference
        # what is measured so far survives an interrupted run (re-render it with --render)
        so_far = {"arms": mean_arms(seeds, arms), "seeds": seeds}
        (args.out / "partial.json").write_text(json.dumps(json_safe(so_far)))
    return {"arms": mean_arms(seeds, arms), "seeds": seeds}


def mean_arms(seeds: dict[str, Json], arms: list[str]) -> dict[str, Json]:
    out = {}
    for arm in arms:
        per = [s[arm] for s in seeds.values() if arm in s]
        out[arm] = {
            k: mean([p[k] for p in per if p[k] is not None])
            for k in ("energy_kwh", "duration_s", "hypervolume", "front_size", "finished")
        }
        for key in ("strategies", "front_strategies"):
            out[arm][key] = dict(sum((Counter(p[key]) for p in per), Counter()))
    return out


def anytime_share(per: Json, arm: str, others: list[str]) -> float:
    """Share of the energies (every arm's curve points, past the first finished trial of each
    arm) at which ``arm``'s hypervolume so far is at least every other arm's."""

    def at(curve: list[list[float]], energy: float) -> float:
        return max((hv for e, hv in curve if e <= energy), default=0.0)

    curves = {a: per[a]["anytime"] for a in [arm, *others]}
    start = max(min((e for e, hv in c if hv > 0), default=0.0) for c in curves.values())
    grid = sorted({e for c in curves.values() for e, _ in c if e >= start})
    wins = [all(at(curves[arm], e) >= at(curves[o], e) for o in others) for e in grid]
    return sum(wins) / len(wins) if wins else float("nan")


def goals(report: Json, arm: str) -> list[Json]:
    """Issue 19's goals for ``arm`` (an MO-ASHA arm) against ``fifo`` and ``asha``."""
    seeds = [s for s in report["seeds"].values() if arm in s]
    hv = {a: [s[a]["hypervolume"] for s in seeds] for a in ("fifo", "asha", arm)}
    energy = mean([s[arm]["energy_kwh"] for s in seeds]) / mean(
        [s["fifo"]["energy_kwh"] for s in seeds]
    )
    spread = std(hv["fifo"]) if len(seeds) > 1 else 0.0
    hv_ok = mean(hv[arm]) >= mean(hv["fifo"]) - spread
    share = [anytime_share(s, arm, ["fifo", "asha"]) for s in seeds]
    return [
        check(
            "hypervolume >= fifo's (within its spread), energy <= 1/3 of fifo's",
            hv_ok and energy <= 1 / 3,
            f"HV {mean(hv[arm]) * 1e6:.3f} vs fifo {mean(hv['fifo']) * 1e6:.3f} "
            f"(sd {spread * 1e6:.3f}); energy {energy:.3f} x fifo; {len(seeds)} seeds",
            arm=arm,
        ),
        check(
            "hypervolume above asha's at equal trials",
            mean(hv[arm]) > mean(hv["asha"]),
            f"{mean(hv[arm]) * 1e6:.3f} vs {mean(hv['asha']) * 1e6:.3f}; seeds above: "
            f"{sum(a > b for a, b in zip(hv[arm], hv['asha'], strict=True))}/{len(seeds)}",
            arm=arm,
        ),
        check(
            "any-time: hypervolume >= both other arms' at every energy",
            min(share) == 1.0,
            "share of energies where it holds, per seed: " + ", ".join(f"{x:.2f}" for x in share),
            arm=arm,
        ),
    ]


def demo_goals(report: Json, arm: str) -> list[Json]:
    """The demo's goals, on ``arm`` (the pipeline's own settings): its printed front (val_acc
    vs co2_kg of the finished trials) in the median seed, realised subset sizes, wall time."""
    from graft_hpo.pareto import pareto_mask

    sizes, spans, ratios, walls = [], [], [], []
    for per in report["seeds"].values():
        done = [
            t for t in per[arm]["trials"] if not t["early_stopped"] and t["status"] == "FINISHED"
        ]
        points = [[t["val_acc"], t["co2_kg"]] for t in done]
        front = [t for t, m in zip(done, pareto_mask(points, [True, False]), strict=True) if m]
        co2 = [t["co2_kg"] for t in front]
        sizes.append(len(front))
        spans.append(max(co2) / min(co2) if co2 else 0.0)
        walls.append(per[arm]["duration_s"])
        for t in per[arm]["trials"]:  # a subset trial trains on its prefix from epoch 1
            if _strategy(t) in ("graft", "random") and t.get("fraction_effective") is not None:
                ratios.append(t["fraction_effective"] / float(t["params"]["selection.fraction"]))
    median = sorted(zip(sizes, spans, strict=True))[len(sizes) // 2]
    return [
        check(
            "front of >= 4 finished trials spanning >= 3x in CO2 (median seed)",
            median[0] >= 4 and median[1] >= 3,
            f"median seed: {median[0]} trials, {median[1]:.1f}x; per seed: "
            + ", ".join(f"{n}/{x:.1f}x" for n, x in zip(sizes, spans, strict=True)),
            arm=arm,
        ),
        check(
            "no subset trial under half its sampled budget",
            bool(ratios) and min(ratios) >= 0.5,
            f"realised / sampled budget: min {min(ratios, default=float('nan')):.2f} "
            f"over {len(ratios)} graft and random trials",
            arm=arm,
        ),
        check(
            "sweep under 2 minutes",
            max(walls) < 120,
            "wall s per seed: " + ", ".join(f"{w:.0f}" for w in walls),
            arm=arm,
        ),
    ]


def markdown(report: Json) -> str:
    arms = report["arms"]
    lines = [
        "# front_bench: which scheduler finds the accuracy-vs-CO2 front",
        "",
        f"Machine: {report.get('machine', {}).get('description')}; seeds {list(report['seeds'])}; "
        "means over seeds. Hypervolume of the finished trials' (test_acc, co2_kg), one "
        "reference point per seed for all arms.",
        "",
        *head(
            "arm | seeds | hypervolume (1e-6) | HV / fifo | energy (1e-6 kWh) | energy / fifo | "
            "wall s | finished | front | strategies (all trials) | strategies (fronts)"
        ),
    ]
    for name, arm in arms.items():
        ran = [s for s in report["seeds"].values() if name in s]
        hv, energy = (
            mean([s[name][k] for s in ran]) / mean([s["fifo"][k] for s in ran])
            for k in ("hypervolume", "energy_kwh")
        )
        lines.append(
            f"| {name} | {len(ran)} | {num(arm['hypervolume'], '.3f', 1e6)} | {num(hv, '.3f')} | "
            f"{num(arm['energy_kwh'], '.1f', 1e6)} | {num(energy, '.3f')} | "
            f"{num(arm['duration_s'], '.0f')} | {num(arm['finished'], '.1f')} | "
            f"{num(arm['front_size'], '.1f')} | {_mix(arm['strategies'])} | "
            f"{_mix(arm['front_strategies'])} |"
        )
    lines += ["", "Ratios to fifo are over the seeds the arm ran (means of both).", ""]
    lines += ["", "Per seed, hypervolume (1e-6) and energy (1e-6 kWh):", ""]
    lines += head("seed | " + " | ".join(arms))
    for seed, per in report["seeds"].items():
        cells = " | ".join(
            f"{num(per[a]['hypervolume'], '.3f', 1e6)} ({num(per[a]['energy_kwh'], '.1f', 1e6)})"
            if a in per
            else "-"
            for a in arms
        )
        lines.append(f"| {seed} | {cells} |")
    checks = [c for a in arms if a.startswith("moasha") for c in goals(report, a)]
    if "moasha-projected" in arms:  # the pipeline's own settings: what `make demo` runs
        checks += demo_goals(report, "moasha-projected")
    lines += ["", "Goals (issue 19):", "", *goal_table(checks, ["arm"])]
    return "\n".join(lines) + "\n"


def _mix(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def plot(report: Json, path: Path) -> None:
    seeds = list(report["seeds"].values())
    fig, axes = axes_row(len(seeds), 3.2, 3.0)
    for ax, (seed, per) in zip(axes, report["seeds"].items(), strict=False):
        for arm in (a for a in report["arms"] if a in per):
            step_curve(ax, [tuple(p) for p in per[arm]["anytime"]], label=arm)
        ax.set_title(f"seed {seed}")
        ax.set_xlabel("sweep energy (kWh)")
    axes[0].set_ylabel("hypervolume (test_acc x kg CO2)")
    axes[0].legend(fontsize=7)
    save_figure(fig, path)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="mnist", help="bundled name or YAML path")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--trials", type=positive_int, default=None, help="the pipeline's")
    parser.add_argument("--reports", nargs="+", choices=REPORTS, default=list(REPORTS))
    parser.add_argument(
        "--variant-seeds",
        type=int,
        nargs="+",
        default=None,
        help="seeds that run every report's MO-ASHA arm (default all; others the first only)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_out" / "front")
    parser.add_argument(
        "--render", type=existing_file, default=None, help="re-render a saved JSON report"
    )
    add_overrides(parser, "every sweep")
    add_json_line(parser)
    add_plot(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.render is not None:  # the tables again, from a report's JSON (its last line)
        report = saved_report(args.render)
        return print_report(args, report, markdown, plot)
    return print_report(args, run_report(args, run_all), markdown, plot)


if __name__ == "__main__":
    raise SystemExit(main())
