"""One table from several saved ``hpo_bench.py --json`` reports (repeats over seeds, variants).

    .venv/bin/python benchmarks/hpo_summary.py benchmarks/results/hpo_seeds/*.json

Each report is the JSON object ``hpo_bench.py --json`` prints last (a file holding only that
line, or the whole stdout of a run). One row per report, named by its file: the search seed,
full/graft and full/random ratios of energy and wall time, graft's hypervolume over random's,
the best validation accuracies and retrained test accuracies, and how many of the issue's four
goals the run met; then the mean ratios per group of files (the name up to ``_seed``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

Json = dict[str, Any]


def load_report(path: Path) -> Json:
    """The report in ``path``: its last non-empty line, parsed."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1])


def summary_row(name: str, report: Json) -> Json:
    """The numbers one row shows."""
    runs, ratios = report["runs"], report["ratios"]
    return {
        "name": name,
        "seed": report["args"]["seed"],
        "energy_graft": ratios["full/graft"]["energy_kwh"],
        "energy_random": ratios["full/random"]["energy_kwh"],
        "wall_graft": ratios["full/graft"]["duration_s"],
        "wall_random": ratios["full/random"]["duration_s"],
        "hv_ratio": runs["graft"]["hypervolume"] / runs["random"]["hypervolume"],
        "val": [runs[s]["best_val_acc"] for s in ("full", "graft", "random")],
        "test": [runs[s]["test_acc"] for s in ("full", "graft", "random")],
        "goals_met": sum(g["verdict"] == "PASS" for g in report["goals"]),
        "goals": len(report["goals"]),
    }


def group_of(name: str) -> str:
    """``select20_seed1`` -> ``select20``; names without ``_seed`` are their own group."""
    return name.split("_seed")[0]


def markdown(rows: list[Json]) -> list[str]:
    """The per-report table, then the mean ratios per group."""
    lines = [
        "| report | seed | full/graft energy | full/random energy | full/graft wall "
        "| full/random wall | HV graft / random | best val full/graft/random (%) "
        "| test full/graft/random (%) | goals met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        val = "/".join(f"{100 * v:.1f}" for v in r["val"])
        test = "/".join(f"{100 * v:.1f}" for v in r["test"])
        lines.append(
            f"| {r['name']} | {r['seed']} | {r['energy_graft']:.2f}x | {r['energy_random']:.2f}x "
            f"| {r['wall_graft']:.2f}x | {r['wall_random']:.2f}x | {r['hv_ratio']:.3f} "
            f"| {val} | {test} | {r['goals_met']}/{r['goals']} |"
        )
    groups: dict[str, list[Json]] = defaultdict(list)
    for r in rows:
        groups[group_of(r["name"])].append(r)
    lines += [
        "",
        "| group | reports | mean full/graft energy | mean full/graft wall | HV graft > random |",
        "|---|---|---|---|---|",
    ]
    for name, members in groups.items():
        lines.append(
            f"| {name} | {len(members)} "
            f"| {statistics.mean(r['energy_graft'] for r in members):.2f}x "
            f"| {statistics.mean(r['wall_graft'] for r in members):.2f}x "
            f"| {sum(r['hv_ratio'] > 1 for r in members)}/{len(members)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("reports", nargs="+", type=Path, help="hpo_bench.py --json outputs")
    args = parser.parse_args(argv)
    rows = []
    for path in args.reports:
        try:
            rows.append(summary_row(path.stem, load_report(path)))
        except (OSError, ValueError, KeyError, IndexError) as err:
            print(f"error: {path}: not an hpo_bench.py --json report ({err})", file=sys.stderr)
            return 2
    print("\n".join(markdown(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
