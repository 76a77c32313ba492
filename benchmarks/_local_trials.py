"""Trials trained in this process, one after another (no Ray, no MLflow), and what a report
keeps of each: final metrics, per-epoch history, selection rounds, load average, wall time.

Shared by ``train_bench.py`` (its runs) and ``round_bench.py`` (its accuracy arms).
"""

from __future__ import annotations

import math
import time
from typing import Any

from benchmarks._machine import load_avg
from benchmarks._stats import mean
from graft_hpo.config import load_pipeline
from graft_hpo.selection import Selection
from graft_hpo.training import TrainHooks
from graft_hpo.training import TrainState
from graft_hpo.trial import run_trial

Json = dict[str, Any]


class Recorder(TrainHooks):
    """Keeps the per-epoch metrics and every selection round's statistics."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self.selections: list[dict[str, float]] = []

    def on_selection_end(self, state: TrainState, selection: Selection) -> None:
        self.selections.append(
            {"epoch": state.epoch, "fraction": selection.fraction, **selection.stats}
        )

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        self.history.append(dict(metrics))


def one_trial(pipeline: str, overrides: list[str]) -> Json:
    """:func:`graft_hpo.run_trial` of ``pipeline`` with ``overrides``, tracking off.

    Returns:
        ``status``, ``error``, ``metrics`` (the trial's final ones), ``subset_fraction`` (mean
        share of the data per epoch after warm-up), ``history`` (metrics per epoch),
        ``selections`` (epoch, fraction and stats per round), the schedule (``epochs``,
        ``select_every``, ``warm_start_epochs``), ``load_avg_1min`` at the start and
        ``call_s`` (seconds, with data loading and model building).
    """
    config = load_pipeline(pipeline, overrides=overrides)
    recorder = Recorder()
    load = load_avg()  # at the start; other jobs on the shared machine inflate times
    start = time.perf_counter()
    result = run_trial(config, tracking=False, hooks=[recorder])
    warm = config.selection.warm_start_epochs
    subset = [h["fraction_effective"] for h in recorder.history[warm:]]
    return {
        "status": result.status,
        "error": result.error,
        "metrics": result.metrics,
        "subset_fraction": mean(subset),  # mean share of the data per subset epoch
        "history": recorder.history,
        "selections": recorder.selections,
        "epochs": config.train.epochs,
        "select_every": config.selection.select_every,
        "warm_start_epochs": config.selection.warm_start_epochs,
        "load_avg_1min": math.nan if load is None else load,
        "call_s": time.perf_counter() - start,  # includes data loading and model building
    }
