"""``noise_bench.py``'s cells, arms and one run: a trial with its subsets' composition.

A run is :func:`graft_hpo.trial.run_trial` (no MLflow, no codecarbon: the benchmark reports
accuracy and seconds) with ``evaluate_test=True``; a hook measures each selection round's
subset against :func:`graft_hpo.data.training_truth`, which neither training nor selection
sees.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from graft_hpo.config import load_pipeline
from graft_hpo.data import load_data
from graft_hpo.data import training_truth
from graft_hpo.selection import Selection
from graft_hpo.training import TrainHooks
from graft_hpo.training import TrainState
from graft_hpo.trial import run_trial

Json = dict[str, Any]

# the digits pipeline's per-trial recipe; MNIST-5k's pipeline ranks per sweep by default, so
# its per-trial arms use train_bench.py's per-trial settings (one warm-up epoch, one round)
_MNIST_PER_TRIAL = ["selection.warm_start_epochs=1", "selection.select_every=20"]

# cell -> (pipeline, overrides); "{n}" is --hard-n
CELLS: dict[str, tuple[str, list[str]]] = {
    "hard": ("digits", ["data.name=synthetic_hard"]),
    "hard_noise0": ("digits", ["data.name=synthetic_hard", "data.options.label_noise=0.0"]),
    "hard_noise0.2": ("digits", ["data.name=synthetic_hard", "data.options.label_noise=0.2"]),
    "hard_dup0": ("digits", ["data.name=synthetic_hard", "data.options.duplicates=0.0"]),
    "hard_imb1": ("digits", ["data.name=synthetic_hard", "data.options.imbalance=1.0"]),
    "mnist_noise0": ("mnist", [*_MNIST_PER_TRIAL]),
    "mnist_noise0.2": ("mnist", [*_MNIST_PER_TRIAL, "data.label_noise=0.2"]),
    "mnist_noise0.4": ("mnist", [*_MNIST_PER_TRIAL, "data.label_noise=0.4"]),
    "digits_noise0": ("digits", []),
    "digits_noise0.2": ("digits", ["data.label_noise=0.2"]),
    "digits_noise0.4": ("digits", ["data.label_noise=0.4"]),
}

# the sweep's recipe: one ranking by a 2-epoch proxy, no warm start, one subset per trial
_SWEEP = [
    "selection.scope=sweep",
    "selection.proxy_epochs=2",
    "selection.warm_start_epochs=0",
    "selection.select_every=20",
]
# arm -> overrides (the strategy and its knobs)
ARMS: dict[str, list[str]] = {
    "graft": ["selection.strategy=graft", "selection.noise_filter=chance"],
    "graft_misfit": ["selection.strategy=graft", "selection.noise_filter=misfit"],
    "graft_knn": ["selection.strategy=graft", "selection.noise_filter=knn"],
    "graft_off": ["selection.strategy=graft", "selection.noise_filter=none"],
    "random": ["selection.strategy=random"],
    "infobatch": ["selection.strategy=infobatch", "selection.prune_ratio=0.5"],
    "full": ["selection.strategy=full"],
    "graft_sweep": ["selection.strategy=graft", "selection.noise_filter=chance", *_SWEEP],
    "graft_sweep_misfit": ["selection.strategy=graft", "selection.noise_filter=misfit", *_SWEEP],
    "graft_sweep_knn": ["selection.strategy=graft", "selection.noise_filter=knn", *_SWEEP],
    "graft_sweep_off": ["selection.strategy=graft", "selection.noise_filter=none", *_SWEEP],
    "random_sweep": ["selection.strategy=random", *_SWEEP[2:]],
}
_ONCE = {"infobatch", "full"}  # not set by a budget: one run per seed


def arm_fractions(arm: str, fractions: Sequence[float], sweep: Sequence[float]) -> list[float]:
    """The budgets an arm runs at: 1.0 once for full and infobatch, ``sweep`` for the sweep
    recipe's arms, else ``fractions``."""
    if arm in _ONCE:
        return [1.0]
    return list(sweep if arm.endswith("_sweep") or "_sweep_" in arm else fractions)


def overrides(
    cell: str, arm: str, fraction: float, seed: int, *, epochs: int | None, hard_n: int
) -> tuple[str, list[str]]:
    """The pipeline and every override of one run."""
    pipeline, data = CELLS[cell]
    out = ["train.device=cpu", "emissions.enabled=false", f"train.seed={seed}", *data]
    if cell.startswith("hard"):
        out += [f"data.options.n={hard_n}", f"data.options.test_n={max(1000, hard_n // 5)}"]
    out += ["selection.scope=trial", *ARMS[arm]]
    if arm not in _ONCE:
        out.append(f"selection.fraction={fraction}")
    if epochs is not None:
        out.append(f"train.epochs={epochs}")
    return pipeline, out


class Composition(TrainHooks):
    """What each selection round's subset holds, by the data's truth."""

    def __init__(self, wrong: torch.Tensor, duplicate: torch.Tensor | None, mode: Any) -> None:
        self.wrong, self.duplicate, self.mode = wrong, duplicate, mode
        self.rounds: list[Json] = []

    def on_selection_end(self, state: TrainState, selection: Selection) -> None:
        idx = selection.indices.cpu()
        row: Json = {
            "epoch": state.epoch,
            "fraction": selection.fraction,
            "wrong": float(self.wrong[idx].float().mean()),
            "filtered": selection.stats.get("filtered"),
            "selection_s": selection.stats.get("selection_s"),
        }
        if self.duplicate is not None and self.mode is not None:
            row["duplicate"] = float(self.duplicate[idx].float().mean())
            row["modes"] = int(self.mode[idx].unique().numel())
            row["modes_total"] = int(self.mode.unique().numel())
        self.rounds.append(row)


def _truth_hook(config: Any) -> Composition:
    truth = training_truth(config.data, seed=config.train.seed)
    labels = load_data(config.data, seed=config.train.seed).train_eval.targets  # type: ignore[attr-defined]
    return Composition(labels != truth.true_y, truth.duplicate, truth.mode)


def one_run(
    cell: str,
    arm: str,
    fraction: float,
    seed: int,
    *,
    epochs: int | None,
    hard_n: int,
    extra: Sequence[str] = (),
) -> Json:
    """One trial of ``cell`` with ``arm`` at budget ``fraction``: its final metrics (with
    ``test_acc``), the first round's composition and the wall time of the call."""
    pipeline, sets = overrides(cell, arm, fraction, seed, epochs=epochs, hard_n=hard_n)
    config = load_pipeline(pipeline, overrides=[*sets, *extra])
    hook = _truth_hook(config)
    start = time.perf_counter()
    result = run_trial(config, tracking=False, hooks=[hook], evaluate_test=True)
    return {
        "cell": cell,
        "arm": arm,
        "fraction": fraction,
        "seed": seed,
        "status": result.status,
        "error": result.error,
        "metrics": result.metrics,
        "composition": hook.rounds[0] if hook.rounds else {},
        "rounds": hook.rounds,
        "call_s": time.perf_counter() - start,
    }
