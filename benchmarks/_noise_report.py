"""``noise_bench.py``'s summary, goal checks and Markdown report: pure functions of its runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from benchmarks._stats import describe
from benchmarks._stats import finite
from benchmarks._stats import mean
from benchmarks._tables import check
from benchmarks._tables import goal_table
from benchmarks._tables import head
from benchmarks._tables import num

Json = dict[str, Any]

GOAL_SELECTION_SHARE = 0.10
_COMPOSITION = ("wrong", "duplicate", "redundant", "modes", "filtered")


def _key(arm: str, fraction: float) -> str:
    return f"{arm}@{fraction:g}"


def summarise(runs: Sequence[Json]) -> Json:
    """Per cell, per ``"arm@fraction"``: test accuracy (%) mean/std over the finished seeds,
    the first round's composition (means), the selection share of the trial's time."""
    out: Json = {}
    for run in runs:
        out.setdefault(run["cell"], {}).setdefault(_key(run["arm"], run["fraction"]), [])
        out[run["cell"]][_key(run["arm"], run["fraction"])].append(run)
    summary: Json = {}
    for cell, rows in out.items():
        summary[cell] = {}
        for key, mine in sorted(rows.items()):
            done = [r for r in mine if r["status"] == "FINISHED" and "test_acc" in r["metrics"]]
            acc = [100 * r["metrics"]["test_acc"] for r in done]
            share = [
                r["metrics"].get("selection_s", 0.0) / r["metrics"]["duration_s"]
                for r in done
                if finite(r["metrics"].get("duration_s"))
            ]
            row: Json = {
                "arm": mine[0]["arm"],
                "fraction": mine[0]["fraction"],
                "n": len(done),
                "seeds": sorted(r["seed"] for r in done),
                "acc": {r["seed"]: 100 * r["metrics"]["test_acc"] for r in done},
                **describe("acc", acc, "mean", "std"),
                "selection_share": mean(share),
                "selection_share_max": max(share, default=float("nan")),
                "time_mean": mean([r["metrics"].get("duration_s", 0.0) for r in done]),
            }
            for part in _COMPOSITION:
                values = [finite(r["composition"].get(part)) for r in done]
                row[part] = mean([v for v in values if v is not None])
            summary[cell][key] = row
    return summary


def _paired(a: Json, b: Json) -> tuple[float, int]:
    """Mean of ``a - b`` over the seeds both finished, and how many."""
    seeds = [s for s in a["acc"] if s in b["acc"]]
    return mean([a["acc"][s] - b["acc"][s] for s in seeds]), len(seeds)


def goals(summary: Json) -> list[Json]:
    """The issue's goals, per cell: GRAFT at least random's accuracy at every budget (per
    trial and in the sweep's recipe), at least full's on ``synthetic_hard`` at 0.2, no loss
    against GRAFT before the fix on clean data, and selection within 10% of a trial."""
    checks: list[Json] = []
    pairs = (
        ("graft", "random"),
        ("graft_knn", "random"),
        ("graft_knn_dedup", "random"),
        ("graft_knn_dedup", "graft_knn"),
        ("graft_knn_reuse", "graft_knn"),  # results/noise_reuse_warmup.json (--from-json)
        ("graft_sweep_knn_dedup", "random_sweep"),
        ("graft_sweep_knn_dedup", "graft_sweep_knn"),
        ("graft_sweep", "random_sweep"),
        ("graft_sweep_knn", "random_sweep"),
        ("graft", "graft_off"),
        ("graft_knn", "graft_off"),
        ("graft_knn_inputs", "random"),
        ("graft_knn_inputs", "graft_off"),
        ("graft_knn_inputs", "graft_knn"),
    )
    for cell, rows in summary.items():
        for row in rows.values():
            for arm, control in pairs:
                other = rows.get(_key(control, row["fraction"]))
                if row["arm"] != arm or other is None or not row["n"] or not other["n"]:
                    continue
                diff, n = _paired(row, other)
                checks.append(
                    check(
                        f"{arm} >= {control} at {row['fraction']:g}",
                        row["acc_mean"] >= other["acc_mean"],
                        f"{row['acc_mean']:.1f} vs {other['acc_mean']:.1f} "
                        f"(paired {diff:+.1f} pts, {n} seeds)",
                        cell=cell,
                    )
                )
        full = rows.get(_key("full", 1.0))
        for arm in ("graft", "graft_knn", "graft_knn_dedup"):
            graft = rows.get(_key(arm, 0.2))
            if not (cell.startswith("hard") and full and graft and full["n"] and graft["n"]):
                continue
            diff, n = _paired(graft, full)
            checks.append(
                check(
                    f"{arm}@0.2 >= full",
                    graft["acc_mean"] >= full["acc_mean"],
                    f"{graft['acc_mean']:.1f} vs {full['acc_mean']:.1f} "
                    f"(paired {diff:+.1f} pts, {n} seeds)",
                    cell=cell,
                )
            )
        for arm in (
            "graft",
            "graft_knn",
            "graft_knn_inputs",
            "graft_knn_dedup",
            "graft_knn_reuse",
        ):
            shares = [r["selection_share_max"] for r in rows.values() if r["arm"] == arm]
            if shares:
                checks.append(
                    check(
                        f"selection <= {GOAL_SELECTION_SHARE:.0%} of a {arm} trial",
                        max(shares) <= GOAL_SELECTION_SHARE,
                        f"worst run {max(shares):.1%}",
                        cell=cell,
                    )
                )
    return checks


def _row_line(row: Json) -> str:
    modes = num(row["modes"], ".1f")
    seeds = " / ".join(f"{row['acc'][s]:.1f}" for s in sorted(row["acc"]))
    return (
        f"| {row['arm']} | {row['fraction']:g} | {row['acc_mean']:.1f} ± {row['acc_std']:.1f} "
        f"| {seeds} | {num(row['wrong'], '.1%', missing='-')} "
        f"| {num(row['duplicate'], '.1%')} | {num(row.get('redundant'), '.1%')} "
        f"| {modes} | {num(row['filtered'], '.1%')} | {num(row['selection_share'], '.1%')} "
        f"| {row['time_mean']:.1f} | {row['n']} |"
    )


def headline(summary: Json, fraction: float = 0.2) -> list[str]:
    """One line per cell: test accuracy of every arm at ``fraction`` (and full, infobatch)."""
    arms = [
        "graft_off",
        "graft_misfit",
        "graft",
        "graft_knn",
        "graft_knn_inputs",
        "graft_knn_dedup",
        "graft_knn_reuse",
        "random",
        "infobatch",
        "full",
    ]
    sweep = [
        "graft_sweep_off",
        "graft_sweep_misfit",
        "graft_sweep",
        "graft_sweep_knn",
        "graft_sweep_knn_dedup",
        "random_sweep",
    ]
    ran = {row["arm"] for rows in summary.values() for row in rows.values()}
    arms, sweep = [a for a in arms if a in ran], [a for a in sweep if a in ran]
    lines = head("cell | " + " | ".join(arms + sweep))
    for cell, rows in summary.items():
        cells = []
        for arm in arms + sweep:
            row = rows.get(_key(arm, 1.0 if arm in ("full", "infobatch") else fraction))
            cells.append(f"{row['acc_mean']:.1f} ± {row['acc_std']:.1f}" if row else "")
        lines.append(f"| {cell} | " + " | ".join(cells) + " |")
    return lines


def run_lines(runs: Sequence[Json]) -> list[str]:
    """One line per finished run, by cell, arm and seed: test accuracy, the seconds of the
    first round, of all rounds, of selection in all (the rounds and what the loop spent for
    them: ``selection.reuse_warmup``'s recording), the trial's seconds, the selection share."""
    lines = head(
        "cell | arm | budget | seed | test acc (%) | round 1 (s) | rounds (s) | selection (s) "
        "| trial (s) | share"
    )
    done = [r for r in runs if r["status"] == "FINISHED" and "test_acc" in r["metrics"]]
    for r in sorted(done, key=lambda r: (r["cell"], r["arm"], r["fraction"], r["seed"])):
        m = r["metrics"]
        sel, dur = m.get("selection_s", 0.0), m.get("duration_s", float("nan"))
        rounds = [finite(x.get("selection_s"), math.nan) for x in r.get("rounds", [])]
        first, every = num(rounds[0] if rounds else None, ".3f"), num(sum(rounds), ".3f")
        lines.append(
            f"| {r['cell']} | {r['arm']} | {r['fraction']:g} | {r['seed']} "
            f"| {100 * m['test_acc']:.1f} | {first} | {every} | {sel:.3f} | {dur:.2f} "
            f"| {num(sel / dur, '.1%')} |"
        )
    return lines


def markdown(report: Json, *, per_run: bool = False) -> str:
    """The report: the headline table at budget 0.2, every cell's rows, the goals."""
    m, args = report["machine"], report["args"]
    lines = [
        "# GRAFT under label noise: clean test accuracy (%), mean ± std over seeds",
        "",
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']}; "
        f"{args['jobs']} process(es) of one thread. Seeds {args['seeds']}, budgets "
        f"{args['fractions']} (sweep arms {args['sweep_fractions']}), synthetic_hard "
        f"n={args['hard_n']}, epochs {args['epochs'] or 'the pipeline’s'}, extra overrides "
        f"{args['set'] or 'none'}; wall time {report['wall_s']:.0f} s.",
        "",
        "## At budget 0.2 (infobatch: prune ratio 0.5; full: all data)",
        "",
        *headline(report["summary"]),
        "",
    ]
    for cell, rows in report["summary"].items():
        lines += [
            f"## {cell}",
            "",
            *head(
                "arm | budget | test acc (%) | per seed | wrong labels in subset "
                "| near-duplicates | redundant | modes covered | filtered out "
                "| selection share | time (s) | n"
            ),
            *(_row_line(row) for row in rows.values()),
            "",
        ]
    failed = [r for r in report["runs"] if r["status"] != "FINISHED"]
    lines += [
        f"- FAILED {r['cell']} {r['arm']}@{r['fraction']:g} seed {r['seed']}: {r['error']}"
        for r in failed
    ]
    lines += ["## Goals", "", *goal_table(report["goals"], where=("cell",))]
    if per_run:
        lines += ["", "## Every run", "", *run_lines(report["runs"])]
    return "\n".join(lines)
