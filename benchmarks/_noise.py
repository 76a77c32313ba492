"""``noise_bench.py``'s cells, arms and one run: a trial with its subsets' composition.

A run is :func:`graft_hpo.trial.run_trial` (no MLflow, no codecarbon: the benchmark reports
accuracy and seconds) with ``evaluate_test=True``; a hook measures each selection round's
subset against :func:`graft_hpo.data.training_truth`, which neither training nor selection
sees.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

import torch

from graft_hpo.config import load_pipeline
from graft_hpo.data import load_data
from graft_hpo.data import training_truth
from graft_hpo.data._load import _split
from graft_hpo.data._synthetic_hard import synthetic_hard_pool
from graft_hpo.selection import Selection
from graft_hpo.selection import _graft
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
# the dedup arms' threshold (docs/noise.md: benchmarks/results/dedup_probe.md)
DEDUP = 0.99
# arm -> overrides (the strategy and its knobs)
ARMS: dict[str, list[str]] = {
    "graft": ["selection.strategy=graft", "selection.noise_filter=chance"],
    "graft_misfit": ["selection.strategy=graft", "selection.noise_filter=misfit"],
    "graft_knn": ["selection.strategy=graft", "selection.noise_filter=knn"],
    "graft_knn_dedup": [
        "selection.strategy=graft",
        "selection.noise_filter=knn",
        f"selection.dedup={DEDUP}",
    ],
    "graft_off": ["selection.strategy=graft", "selection.noise_filter=none"],
    "random": ["selection.strategy=random"],
    "infobatch": ["selection.strategy=infobatch", "selection.prune_ratio=0.5"],
    "full": ["selection.strategy=full"],
    "graft_sweep": ["selection.strategy=graft", "selection.noise_filter=chance", *_SWEEP],
    "graft_sweep_misfit": ["selection.strategy=graft", "selection.noise_filter=misfit", *_SWEEP],
    "graft_sweep_knn": ["selection.strategy=graft", "selection.noise_filter=knn", *_SWEEP],
    "graft_sweep_knn_dedup": [
        "selection.strategy=graft",
        "selection.noise_filter=knn",
        f"selection.dedup={DEDUP}",
        *_SWEEP,
    ],
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

    def __init__(
        self,
        wrong: torch.Tensor,
        duplicate: torch.Tensor | None,
        mode: Any,
        group: torch.Tensor | None = None,
    ) -> None:
        self.wrong, self.duplicate, self.mode, self.group = wrong, duplicate, mode, group
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
        if self.group is not None:  # subset members whose copy group has another one in it
            row["redundant"] = 1.0 - self.group[idx].unique().numel() / max(1, len(idx))
        self.rounds.append(row)


def copy_groups(config: Any) -> torch.Tensor | None:
    """``(n,)`` group id of every training sample of ``synthetic_hard`` (an original and its
    jittered copies share the id of their lowest member): pairs of a mode closer in raw pixels
    than a fifth of the mode's median distance (copies sit about 20 times closer than two
    originals). None for other data. Benchmarks only: selection never sees it."""
    if config.data.name != "synthetic_hard":
        return None
    pool, truth = synthetic_hard_pool(**config.data.options)
    train_idx = _split(pool, config.data, config.train.seed)[0]
    x, mode = pool.x[train_idx].flatten(1).double(), truth.mode[train_idx]
    group = torch.arange(len(train_idx))
    for k in mode.unique():
        members = (mode == k).nonzero().squeeze(1)
        if len(members) < 2:
            continue
        dist = torch.cdist(x[members], x[members])
        near = torch.triu(dist < 0.2 * dist[dist > 0].median(), diagonal=1)
        for i, j in near.nonzero().tolist():  # groups are tiny: relabel the higher id
            a, b = int(group[members[i]]), int(group[members[j]])
            group[group == max(a, b)] = min(a, b)
    return group


def _truth_hook(config: Any) -> Composition:
    truth = training_truth(config.data, seed=config.train.seed)
    labels = load_data(config.data, seed=config.train.seed).train_eval.targets  # type: ignore[attr-defined]
    group = copy_groups(config)
    return Composition(labels != truth.true_y, truth.duplicate, truth.mode, group)


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


class _Stop(Exception):
    """Raised at the first round, once its forward pass is recorded."""


def first_round(
    cell: str, seed: int, hard_n: int, arm: str = "graft_knn", extra: Sequence[str] = ()
) -> tuple[Any, tuple[torch.Tensor, ...]]:
    """The config and ``(candidates, logits, labels, embeds)`` of ``cell``'s first GRAFT
    round (``arm`` at budget 0.2; ``graft_sweep_knn``: the sweep's ranking by its proxy; then
    the ``extra`` overrides): the trial runs up to the round's filter, where its forward pass
    is recorded, and stops."""
    pipeline, sets = overrides(cell, arm, 0.2, seed, epochs=None, hard_n=hard_n)
    config = load_pipeline(pipeline, overrides=[*sets, *extra])
    seen: list[tuple[torch.Tensor, ...]] = []
    original = _graft.split_suspects

    def record(candidates: Any, logits: Any, labels: Any, rule: str, embeds: Any, *_: Any) -> Any:
        seen.append((candidates.cpu(), logits.float().cpu(), labels.cpu(), embeds.float().cpu()))
        raise _Stop

    _graft.split_suspects = record  # type: ignore[assignment]
    try:
        run_trial(config, tracking=False)
    except _Stop:
        pass
    finally:
        _graft.split_suspects = original
    if not seen:
        raise RuntimeError(f"{cell}: the trial ran no GRAFT round")
    return config, seen[0]


def recorded_rounds(
    args: argparse.Namespace,
) -> Iterator[tuple[str, int, Any, tuple[torch.Tensor, ...]]]:
    """``(cell, seed, config, round)`` of every cell and seed of a probe's arguments, seed by
    seed: :func:`first_round` with the probe's ``--arm`` (if it has one), pool size and
    ``--set`` overrides."""
    arm = getattr(args, "arm", "graft_knn")
    for seed in args.seeds:
        for cell in args.cells:
            config, round_ = first_round(cell, seed, args.hard_n, arm, args.extra)
            yield cell, seed, config, round_


def probe_parser(doc: str, cells: Sequence[str], seeds: Sequence[int]) -> argparse.ArgumentParser:
    """The arguments every first-round probe takes: its cells, seeds and ``synthetic_hard``'s
    pool size (the probe adds its own)."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(cells))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    parser.add_argument("--hard-n", type=int, default=8000, help="synthetic_hard's pool size")
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an override after the cell's (e.g. model.options.width=16); repeatable",
    )
    return parser


def probe_main(
    args: argparse.Namespace,
    run_all: Callable[[argparse.Namespace], dict[str, Any]],
    markdown: Callable[[dict[str, Any]], str],
) -> int:
    """Run a probe on one thread and print its report as markdown; a ``--set`` that no cell's
    pipeline accepts exits 2 with the checker's one line, before any trial runs."""
    from benchmarks._machine import run_report
    from graft_hpo.exceptions import ConfigError
    from graft_hpo.trial import check_pipeline

    arm = getattr(args, "arm", "graft_knn")
    try:
        for cell in args.cells:
            pipeline, sets = overrides(cell, arm, 0.2, 0, epochs=None, hard_n=args.hard_n)
            check_pipeline(load_pipeline(pipeline, overrides=[*sets, *args.extra]))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    print(markdown(run_report(args, run_all)))
    return 0
