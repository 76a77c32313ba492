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

``--tpe-group`` runs the same sweeps with Optuna's TPE given ``group=True`` besides the
pipelines' ``multivariate=True, constant_liar=True``: the sampler then samples each group of
parameters that co-occur in the finished trials (GRAFT's conditional knobs among them) jointly,
where without it a knob absent from some trials falls back to a univariate TPE of its own. The
flag replaces ``graft_hpo.sweep._search._OPTUNA_SAMPLERS["tpe"]`` in this process only, which is
where the sampler runs (Ray Tune's ``OptunaSearch`` suggests in the driver); the report records
the arguments of every sampler the sweeps built. The product's default is not changed.

``--set search.startup_trials=N`` gives the sampler N random start-up trials (Optuna's
``n_startup_trials``; default 10); the report records it with the sampler's arguments and counts
the trials "after start-up" from it.

Last stdout line with ``--json``: ``sampler`` (its class and arguments, and how many were
built), ``seeds`` -> seed -> ``score`` (the above), ``wall_s`` and ``trials``.
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
from benchmarks._cli import existing_file  # noqa: E402
from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._machine import json_safe  # noqa: E402
from benchmarks._machine import print_report  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import saved_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._stats import mean  # noqa: E402
from benchmarks._sweep_score import BASELINES  # noqa: E402
from benchmarks._sweep_score import STARTUP  # noqa: E402
from benchmarks._sweep_score import finished  # noqa: E402
from benchmarks._sweep_score import noise_filter  # noqa: E402
from benchmarks._sweep_score import score  # noqa: E402
from benchmarks._sweep_score import strategy  # noqa: E402
from benchmarks._tables import check  # noqa: E402
from benchmarks._tables import goal_table  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._tables import num  # noqa: E402

Json = dict[str, Any]


def use_tpe_group(built: list[Json]) -> None:
    """``--tpe-group``: the sweeps' TPE with ``group=True`` (this process's sampler table);
    every sampler built from then on is recorded in ``built`` (class and arguments)."""
    from graft_hpo.sweep import _search

    name, kwargs = _search._OPTUNA_SAMPLERS["tpe"]
    _search._OPTUNA_SAMPLERS["tpe"] = (name, {**kwargs, "group": True})
    record_samplers(built)


def record_samplers(built: list[Json]) -> None:
    """Record the class and arguments of every sampler ``_search._sampler`` builds here."""
    from graft_hpo.sweep import _search

    build = _search._sampler

    def recorded(config: Any) -> Any:
        sampler = build(config)
        kwargs = _search._OPTUNA_SAMPLERS[config.search.sampler][1]
        # the built sampler's own attributes (TPESampler keeps each argument as ``_<name>``)
        held = {k: getattr(sampler, f"_{k}", v) for k, v in kwargs.items()}
        if hasattr(sampler, "_n_startup_trials"):  # search.startup_trials, or Optuna's default
            held["n_startup_trials"] = sampler._n_startup_trials
        built.append({"class": type(sampler).__name__, "kwargs": held})
        return sampler

    _search._sampler = recorded  # type: ignore[assignment]


def one_sweep(
    args: argparse.Namespace, seed: int, uri: str, stamp: str
) -> tuple[list[Json], float]:
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
    return trials, sweep.wall_s


def run_all(args: argparse.Namespace) -> Json:
    from benchmarks._sweeps import open_store  # sets Ray/MLflow/codecarbon env first
    from benchmarks._sweeps import warm_up

    uri, stamp = open_store(args.out, [])
    built: list[Json] = []
    (use_tpe_group if args.tpe_group else record_samplers)(built)
    warm_up(args, uri, stamp, overrides=[f"data.label_noise={args.noise}", *args.set])
    seeds: dict[str, Json] = {}
    for seed in args.seeds:
        trials, wall = one_sweep(args, seed, uri, stamp)
        start = startup({"sampler": built[-1:]})  # this seed's sampler, built last
        seeds[str(seed)] = {
            "score": score(trials, args.metric, start),
            "wall_s": wall,
            "trials": trials,
        }
        (args.out / "partial.json").write_text(json.dumps(json_safe({"seeds": seeds})))
    kinds = Counter(json.dumps(b, sort_keys=True) for b in built)
    sampler = [{**json.loads(k), "built": n} for k, n in kinds.items()]
    return {"sampler": sampler, "seeds": seeds}


def startup(report: Json) -> int:
    """The random start-up of the report's sampler: its recorded ``n_startup_trials``, else
    Optuna's default (a report from before it was recorded, or a sampler without one)."""
    counts = {b["kwargs"].get("n_startup_trials", STARTUP) for b in report.get("sampler") or []}
    return counts.pop() if len(counts) == 1 else STARTUP


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


def sampler_text(report: Json) -> str:
    """The samplers the sweeps built (``--tpe-group`` or not), as the report recorded them."""
    built = report.get("sampler")
    if not built:
        return "the pipeline's (not recorded)"
    return "; ".join(
        f"`{b['class']}({', '.join(f'{k}={v}' for k, v in b['kwargs'].items())})` "
        f"x {b['built']} (warm-up included)"
        for b in built
    )


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
        f"Sampler: {sampler_text(report)}.",
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


def group_text(report: Json) -> str:
    """``group=True`` / ``False`` of the report's TPE; ``-`` where the report did not record it."""
    built = report.get("sampler")
    if not built:
        return "-"
    return f"group={any(b['kwargs'].get('group') for b in built)}, start-up {startup(report)}"


def after_startup(trials: list[Json], start: int) -> Json:
    """GRAFT's trials after TPE's random start-up with the two choices the start-up's worst
    GRAFT trials had: ``no_filter`` (``noise_filter: none``) and ``raw`` (raw-pixel features)."""
    started = sorted(trials, key=lambda t: t.get("start_ms") or 0)[start:]
    graft = [t for t in started if strategy(t) == "graft"]
    return {
        "no_filter": sum(noise_filter(t) == "none" for t in graft),
        "raw": sum(t["params"].get("selection.features") == "raw" for t in graft),
    }


def compare(paths: list[Path]) -> str:
    """Saved reports side by side (``--compare``): per report and seed, then the seeds' mean,
    the strategies drawn, GRAFT's trials after TPE's start-up, the fronts, the equal-CO2
    comparison of GRAFT and random, each strategy's best accuracy and the sweep's wall time."""
    lines = [
        "# noise_sweep: saved sweeps side by side",
        "",
        "Command: `benchmarks/noise_sweep.py --compare "
        + " ".join(f"benchmarks/results/{p.name}" for p in paths)
        + "` (reads the saved reports; runs nothing). Accuracy: each report's metric (%).",
        "",
        *head(
            "report | TPE | noise | seed | strategies | GRAFT trials | GRAFT after start-up "
            "(filters) | of them: no filter, raw features | front (all) | front (GRAFT + "
            "random) | random covered by GRAFT | "
            "equal CO2: share GRAFT >= random of levels, mean gap (pts) | best GRAFT / random / "
            "full / infobatch | sweep wall (s)"
        ),
    ]
    for path in paths:
        report = saved_report(path)
        args, seeds = report["args"], report["seeds"]
        rows: list[Json] = []
        for seed, per in seeds.items():
            s = per["score"]
            eq, b = s["equal_co2"], s["best"]
            row = {
                "n_graft": s["strategies"].get("graft", 0),
                "after": sum(s["tpe_filters"].values()),
                **after_startup(per["trials"], startup(report)),
                "front_graft": s["front_strategies"].get("graft", 0),
                "pair_graft": s["pair_front"].get("graft", 0),
                "covered": s["random_covered"][0],
                "share": eq["share"],
                "gap": eq["gap_mean"],
                **{k: b.get(k) for k in BASELINES},
                "wall": per.get("wall_s"),
            }
            rows.append(row)
            lines.append(
                f"| {path.stem} | {group_text(report)} | {args.get('noise')} | {seed} | "
                f"{_mix(s['strategies'])} | {row['n_graft']} | {row['after']} "
                f"({_mix(s['tpe_filters'])}) | {row['no_filter']}, {row['raw']} | "
                f"{_mix(s['front_strategies'])} | "
                f"{_mix(s['pair_front'])} | {'/'.join(map(str, s['random_covered']))} | "
                f"{num(eq['share'], '.2f')} of {eq['levels']}, "
                f"{num(eq['gap_mean'], '+.1f', 100)} | "
                f"{' / '.join(num(b.get(k), '.1f', 100) for k in BASELINES)} | "
                f"{num(row['wall'], '.0f')} |"
            )

        def avg(key: str, rows: list[Json] = rows) -> float | None:
            values = [r[key] for r in rows if r[key] is not None]
            return mean(values) if values else None

        lines.append(
            f"| {path.stem} | {group_text(report)} | {args.get('noise')} | **mean** | - | "
            f"{num(avg('n_graft'), '.1f')} | {num(avg('after'), '.1f')} | "
            f"{num(avg('no_filter'), '.1f')}, {num(avg('raw'), '.1f')} | GRAFT "
            f"{num(avg('front_graft'), '.1f')} | GRAFT {num(avg('pair_graft'), '.1f')} | "
            f"{num(avg('covered'), '.1f')} | {num(avg('share'), '.2f')}, "
            f"{num(avg('gap'), '+.1f', 100)} | "
            f"{' / '.join(num(avg(k), '.1f', 100) for k in BASELINES)} | "
            f"{num(avg('wall'), '.0f')} |"
        )
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
    parser.add_argument("--trials", type=positive_int, default=60, help="trials per sweep")
    parser.add_argument(
        "--metric", choices=["test_acc", "val_acc"], default="test_acc", help="the accuracy"
    )
    parser.add_argument(
        "--tpe-group", action="store_true", help="Optuna TPE with group=True (this run only)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_out" / "noise_sweep")
    parser.add_argument(
        "--render", type=existing_file, default=None, help="re-render a saved JSON report"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        default=None,
        metavar="REPORT",
        help="saved reports side by side (per seed and mean), run nothing",
    )
    add_overrides(parser, "every sweep")
    add_json_line(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.compare:
        print(compare(args.compare), end="")
        return 0
    if args.render is not None:  # the tables again, from a report's JSON (its last line)
        report = saved_report(args.render)
        if args.metric != report["args"].get("metric"):
            report["args"]["metric"] = args.metric
            for per in report["seeds"].values():
                per["score"] = score(per["trials"], args.metric, startup(report))
        return print_report(args, report, markdown)
    return print_report(args, run_report(args, run_all), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
