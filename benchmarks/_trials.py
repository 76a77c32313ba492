"""What a sweep's trials add up to: the best, the front's hypervolume, curves and time split.

Pure functions (no I/O) on trial records: dicts as :func:`benchmarks._sweeps.read_trials` builds
them (``status``, ``early_stopped``, ``val_acc``, ``co2_kg``, ``energy_kwh``, ``duration_s``,
``train_s``, ``selection_s``, ``start_ms``, ``end_ms``, ``run_id``, ``params``). Shared by
``hpo_bench.py`` and ``savings_bench.py``; tested in tests/benchmarks/test_hpo_bench.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from benchmarks._stats import finite
from benchmarks._stats import median
from benchmarks._stats import ratio
from graft_hpo.pareto import hypervolume_2d

Json = dict[str, Any]
Trial = Mapping[str, Any]

ACC_MARGIN = 0.01  # the reference accuracy sits this far below the worst finished trial
CO2_SCALE = 1.1  # the reference CO2 is this times the largest trial's
RATIO_KEYS = ("energy_kwh", "co2_kg", "duration_s")


def is_candidate(trial: Trial) -> bool:
    """A trial that may be the best or on a front: FINISHED, not stopped early, with val_acc."""
    acc = trial.get("val_acc")
    return (
        trial.get("status") == "FINISHED"
        and not trial.get("early_stopped", False)
        and isinstance(acc, (int, float))
        and math.isfinite(acc)
    )


def best_trial(trials: Sequence[Trial]) -> Trial | None:
    """The candidate with the highest val_acc (ties: the lower co2_kg, then the earlier)."""
    candidates = [t for t in trials if is_candidate(t)]
    if not candidates:
        return None
    return max(candidates, key=lambda t: (t["val_acc"], -finite(t.get("co2_kg"), math.inf)))


def total(trials: Sequence[Trial], key: str) -> float:
    """The sum of ``key`` over the trials that measured it (failed ones too: they cost)."""
    return sum(finite(t.get(key), 0.0) for t in trials)


def reference_point(
    trials_by_sweep: Mapping[str, Sequence[Trial]],
    *,
    acc_ref: str = "min",
    acc_margin: float = ACC_MARGIN,
    co2_scale: float = CO2_SCALE,
) -> tuple[float, float]:
    """The one (val_acc, co2_kg) reference point every sweep's hypervolume is measured from.

    Args:
        trials_by_sweep: sweep name -> its trials (dicts with ``status``, ``val_acc``,
            ``co2_kg``).
        acc_ref: ``"min"``: the lowest val_acc of any sweep's finished trials minus
            ``acc_margin``, floored at 0 (so the worst trial still adds area, and accuracy
            differences weigh as much as they can); ``"zero"``: accuracy 0.
        acc_margin: see ``acc_ref``; in accuracy units (0.01 = 1 point).
        co2_scale: the reference CO2 is the largest co2_kg of any trial (failed ones
            included) times this.

    Returns:
        ``(val_acc_ref, co2_kg_ref)``; co2 is NaN when no trial measured any.
    """
    everything = [t for trials in trials_by_sweep.values() for t in trials]
    accs = [t["val_acc"] for t in everything if is_candidate(t)]
    co2 = [t["co2_kg"] for t in everything if finite(t.get("co2_kg")) is not None]
    if acc_ref == "zero" or not accs:
        acc = 0.0
    elif acc_ref == "min":
        acc = max(0.0, min(accs) - acc_margin)
    else:
        raise ValueError(f"acc_ref must be 'min' or 'zero'; got {acc_ref!r}")
    return acc, (max(co2) * co2_scale if co2 else math.nan)


def sweep_hypervolume(trials: Sequence[Trial], reference: tuple[float, float]) -> float:
    """Hypervolume (accuracy x kg CO2) of a sweep's finished trials above ``reference``."""
    points = [
        [t["val_acc"], t["co2_kg"]]
        for t in trials
        if is_candidate(t) and finite(t.get("co2_kg")) is not None
    ]
    if not points or not math.isfinite(reference[1]):
        return 0.0
    return hypervolume_2d(points, reference=list(reference), maximize=[True, False])


def in_completion_order(
    trials: Sequence[Trial], start_energy: float = 0.0
) -> Iterator[tuple[float, Trial]]:
    """Each trial by ``end_ms`` (trials without one last), with the sweep's cumulative energy
    when it ended: ``start_energy`` plus every trial's so far, failed and stopped ones too."""
    energy = start_energy
    for t in sorted(trials, key=lambda t: finite(t.get("end_ms"), math.inf)):
        energy += finite(t.get("energy_kwh"), 0.0)
        yield energy, t


def best_so_far_curve(trials: Sequence[Trial]) -> list[tuple[float, float | None]]:
    """Best val_acc so far against cumulative energy, in trial completion order.

    Every trial adds its energy (a failed one too); only candidates can raise the best.

    Returns:
        One ``(cumulative energy_kwh, best val_acc so far or None)`` per trial, ordered by
        ``end_ms`` (trials without one last).
    """
    curve: list[tuple[float, float | None]] = []
    best: float | None = None
    for energy, t in in_completion_order(trials):
        if is_candidate(t):
            best = t["val_acc"] if best is None else max(best, t["val_acc"])
        curve.append((energy, best))
    return curve


def incumbent_changes(trials: Sequence[Trial], start_energy: float = 0.0) -> list[Json]:
    """Where the best finished trial so far changes, in completion order.

    Returns:
        ``{"energy_kwh", "run_id", "val_acc", "params"}`` per change; ``energy_kwh`` is the
        cumulative sweep energy (``start_energy`` plus every trial's, failed and early-stopped
        ones included) when the new incumbent's trial ended.
    """
    best, out = None, []
    for energy, t in in_completion_order(trials, start_energy):
        if is_candidate(t) and (best is None or t["val_acc"] > best):
            best = t["val_acc"]
            out.append(
                {
                    "energy_kwh": energy,
                    "run_id": t["run_id"],
                    "val_acc": best,
                    "params": t["params"],
                }
            )
    return out


def ratio_table(
    runs: Mapping[str, Mapping[str, Any]],
    *,
    base: str = "full",
    keys: Sequence[str] = RATIO_KEYS,
) -> dict[str, dict[str, float | None]]:
    """``{"full/graft": {"energy_kwh": r, ...}, "full/random": {...}}``: base's value / other's.

    A ratio is None when either value is missing, not finite or the divisor is not positive.
    """
    if base not in runs:
        return {}
    return {
        f"{base}/{name}": {key: ratio(runs[base].get(key), run.get(key)) for key in keys}
        for name, run in runs.items()
        if name != base
    }


def time_breakdown(
    trials: Sequence[Trial],
    *,
    sweep_start_ms: float,
    sweep_end_ms: float,
    max_concurrent: int,
) -> Json:
    """Where a sweep's wall time goes, per trial (medians) and at its two ends (seconds).

    From MLflow's run start/end times and each trial's own clocks:

    - ``startup_s``: ``run_sweep`` called -> first trial run opened (validation, parent run,
      Tune setup, the first worker process: imports, data, model);
    - ``launch_gap_s``: a trial's run opened minus the last run that ended before it (process
      start, imports, data loading, model building), over the trials after the first
      ``max_concurrent``;
    - ``measure_s``: ``duration_s - train_s`` (codecarbon's start and stop);
    - ``mlflow_s``: run span minus ``duration_s`` (logging params, metrics, end);
    - ``train_s``: the training loop without selection (epochs, validation);
    - ``selection_s``: selecting subsets;
    - ``finish_s``: last trial run ended -> ``run_sweep`` returned (the front, its artifacts).
    """
    timed = sorted(
        (t for t in trials if t.get("start_ms") is not None and t.get("end_ms") is not None),
        key=lambda t: t["start_ms"],
    )
    gaps = []
    for t in timed[max_concurrent:]:
        before = [u["end_ms"] for u in timed if u["end_ms"] <= t["start_ms"]]
        if before:
            gaps.append((t["start_ms"] - max(before)) / 1000)

    def col(key: str) -> list[float]:
        return [v for t in trials if (v := finite(t.get(key))) is not None]

    duration = {id(t): finite(t.get("duration_s")) for t in trials}
    measure = [
        d - t["train_s"]
        for t in trials
        if (d := duration[id(t)]) is not None and finite(t.get("train_s")) is not None
    ]
    mlflow = [
        (t["end_ms"] - t["start_ms"]) / 1000 - d
        for t in timed
        if (d := duration[id(t)]) is not None
    ]
    train = [
        t["train_s"] - finite(t.get("selection_s"), 0.0)
        for t in trials
        if finite(t.get("train_s")) is not None
    ]
    return {
        "startup_s": (timed[0]["start_ms"] - sweep_start_ms) / 1000 if timed else None,
        "finish_s": (sweep_end_ms - max(t["end_ms"] for t in timed)) / 1000 if timed else None,
        "launch_gap_s": median(gaps, None),
        "measure_s": median(measure, None),
        "mlflow_s": median(mlflow, None),
        "train_s": median(train, None),
        "selection_s": median(col("selection_s"), None),
        "sum_duration_s": sum(col("duration_s")),
        "sum_train_s": sum(train),
        "sum_selection_s": sum(col("selection_s")),
    }
