"""Scoring one noise sweep's trials (``benchmarks/noise_sweep.py``): the front, dominance, the
equal-CO2 comparison of GRAFT and random, and what the search picked per noise filter."""

from __future__ import annotations

from collections import Counter
from typing import Any

from benchmarks._stats import mean

Json = dict[str, Any]

FILTER = "selection.noise_filter"
STRATEGY = "selection.strategy"
TOP = 5  # the best GRAFT trials whose filters the report names
BASELINES = ("graft", "random", "full", "infobatch")  # the digits space's strategies
STARTUP = 10  # Optuna TPE's random start-up trials by default (search.startup_trials: null)


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


def score(trials: list[Json], metric: str, startup: int = STARTUP) -> Json:
    """One sweep's numbers: fronts, dominance, equal-CO2 curves and the filters picked (those
    after the sampler's ``startup`` random trials among them)."""
    done = finished(trials, metric)
    graft = [t for t in done if strategy(t) == "graft"]
    rand = [t for t in done if strategy(t) == "random"]
    pair_front = front(graft + rand, metric)
    best = sorted(graft, key=lambda t: -t[metric])[:TOP]
    started = sorted(trials, key=lambda t: t.get("start_ms") or 0)
    tpe = [t for t in started[startup:] if strategy(t) == "graft"]
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
