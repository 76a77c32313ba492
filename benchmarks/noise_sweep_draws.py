"""Why TPE seldom draws GRAFT in ``noise_sweep.py``'s sweeps: each strategy's trials, by what
the search itself sees (its objectives: validation accuracy on noisy labels, and CO2).

Run from the repository root on reports that ``noise_sweep.py --json`` saved, nothing is run:

    .venv/bin/python benchmarks/noise_sweep_draws.py benchmarks/results/noise_sweep.md

Per report, search seed and ``selection.strategy``: its trials among the first 10 (Optuna
TPE's random start-up, ``n_startup_trials=10``) and among the rest; early-stopped trials; mean
validation accuracy and CO2 (relative to the seed's median trial); and how many of its trials
are on the Pareto front of the search's two objectives over all of the seed's finished trials
(the trials multi-objective TPE counts as "good" are drawn from that front first).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._machine import saved_report  # noqa: E402

Json = dict[str, Any]
STARTUP = 10  # optuna.samplers.TPESampler's default n_startup_trials


def front(trials: list[Json]) -> set[int]:
    """Indices of the trials no other trial beats on both validation accuracy and CO2."""
    out = set()
    for i, a in enumerate(trials):
        if not any(
            b["val_acc"] >= a["val_acc"]
            and b["co2_kg"] <= a["co2_kg"]
            and (b["val_acc"] > a["val_acc"] or b["co2_kg"] < a["co2_kg"])
            for b in trials
        ):
            out.add(i)
    return out


def rows(path: Path) -> list[str]:
    """One Markdown row per (search seed, strategy) of the report at ``path``."""
    out = []
    for seed, sweep in saved_report(path)["seeds"].items():
        trials = sorted(sweep["trials"], key=lambda t: t["start_ms"])
        done = [t for t in trials if t.get("val_acc") is not None and t.get("co2_kg")]
        on_front = front(done)
        median_co2 = statistics.median(t["co2_kg"] for t in done)
        order = {id(t): i for i, t in enumerate(trials)}
        for strategy in sorted({t["params"]["selection.strategy"] for t in trials}):
            mine = [t for t in trials if t["params"]["selection.strategy"] == strategy]
            fin = [t for t in done if t["params"]["selection.strategy"] == strategy]
            early = sum(order[id(t)] < STARTUP for t in mine)
            stopped = sum(bool(t.get("early_stopped")) for t in mine)
            n_front = sum(i in on_front for i, t in enumerate(done) if t in fin)
            val = statistics.mean(t["val_acc"] for t in fin) if fin else float("nan")
            co2 = statistics.mean(t["co2_kg"] for t in fin) / median_co2 if fin else float("nan")
            out.append(
                f"| {path.stem} | {seed} | {strategy} | {early} | {len(mine) - early} | "
                f"{stopped} | {100 * val:.1f} | {co2:.2f} | {n_front} of {len(on_front)} |"
            )
    return out


def startup_graft(path: Path) -> list[str]:
    """One Markdown row per GRAFT trial among a seed's first 10: its knobs and how its
    validation accuracy ranks among those 10 trials."""
    out = []
    for seed, sweep in saved_report(path)["seeds"].items():
        first = sorted(sweep["trials"], key=lambda t: t["start_ms"])[:STARTUP]
        accs = sorted((t.get("val_acc") or 0.0 for t in first), reverse=True)
        for t in first:
            p = t["params"]
            if p["selection.strategy"] != "graft":
                continue
            acc = t.get("val_acc") or 0.0
            out.append(
                f"| {path.stem} | {seed} | {p['selection.noise_filter']} | "
                f"{p['selection.features']} | {float(p['selection.fraction']):.2f} | "
                f"{p['model.name']} | {100 * acc:.1f} | {accs.index(acc) + 1} of {len(first)} |"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("reports", type=Path, nargs="+", help="noise_sweep.py --json reports")
    args = parser.parse_args(argv)
    print(
        "| report | search seed | strategy | trials of the first 10 | trials after | "
        "early-stopped | mean val acc (%) | mean CO2 / median trial's | on the (val acc, "
        "CO2) front |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for path in args.reports:
        print("\n".join(rows(path)))
    print()
    print(
        "| report | search seed | noise filter | features | fraction | model | val acc (%) | "
        "rank among the first 10 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for path in args.reports:
        print("\n".join(startup_graft(path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
