"""The sweep-level selection seen from one trial: the proxy's ranking, the prefix it trains on."""

from __future__ import annotations

import logging

import pytest
import torch

from graft_hpo.config import load_pipeline
from graft_hpo.proxy import proxy_ranking
from graft_hpo.selection import FullSelector
from graft_hpo.selection import GraftSelector
from graft_hpo.selection import PrefixSelector
from graft_hpo.selection import Selection
from graft_hpo.selection import selector_for
from graft_hpo.selection import uses_ranking
from graft_hpo.selection._base import budget_of
from graft_hpo.training import TrainState
from graft_hpo.trial import TrialHooks
from graft_hpo.trial import run_trial

SHARED = [
    "train.epochs=2",
    "train.device=cpu",
    "emissions.enabled=false",
    "selection.scope=sweep",
    "selection.warm_start_epochs=0",
    "selection.proxy_epochs=1",
    "selection.fraction=0.25",
]


class _Selections(TrialHooks):
    """Records every subset the loop trains on."""

    def __init__(self) -> None:
        self.indices: list[torch.Tensor] = []

    def on_selection_end(self, state: TrainState, selection: Selection) -> None:
        self.indices.append(selection.indices)


def test_only_graft_with_sweep_scope_uses_a_ranking() -> None:
    sweep = load_pipeline("digits", SHARED)
    assert uses_ranking(sweep.selection)
    trial = load_pipeline("digits", [*SHARED, "selection.scope=trial"])
    assert not uses_ranking(trial.selection)
    random = load_pipeline("digits", [*SHARED, "selection.strategy=random"])
    assert not uses_ranking(random.selection)
    assert isinstance(selector_for(trial.selection, trial.train), GraftSelector)
    # without a ranking, the selector that ranks; the proxy trains on all the data
    assert isinstance(selector_for(sweep.selection, sweep.train), GraftSelector)
    assert isinstance(selector_for(sweep.selection, sweep.train, proxy=True), FullSelector)


def test_the_proxy_ranking_is_seeded_and_depends_on_the_proxy() -> None:
    config = load_pipeline("digits", SHARED)
    first, again = proxy_ranking(config), proxy_ranking(config)
    assert torch.equal(first.order, again.order)
    n = len(first)
    assert torch.equal(first.order.sort().values, torch.arange(n))
    untrained = proxy_ranking(load_pipeline("digits", [*SHARED, "selection.proxy_epochs=0"]))
    assert not torch.equal(untrained.order, first.order)  # the proxy's training matters
    assert first.stats["proxy_epochs"] == 1 and untrained.stats["proxy_epochs"] == 0


def test_a_trial_given_the_ranking_trains_on_its_budgets_prefix() -> None:
    config = load_pipeline("digits", SHARED)
    ranking = proxy_ranking(config)
    seen = _Selections()
    result = run_trial(config, tracking=False, ranking=ranking, hooks=[seen])
    assert result.status == "FINISHED", result.error
    assert len(seen.indices) == 1  # selected once, at the first epoch, with no warm-up
    assert torch.equal(seen.indices[0], ranking.subset(0.25))
    n = len(ranking)
    assert result.metrics["fraction_effective"] == budget_of(0.25, n) / n
    assert result.metrics["selection_s"] < 0.05  # a prefix, not a scoring pass
    selector = selector_for(config.selection, config.train, ranking)
    assert isinstance(selector, PrefixSelector) and selector.fraction == 0.25


def test_a_trial_outside_a_sweep_ranks_with_its_own_proxy_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = load_pipeline("digits", SHARED)
    seen = _Selections()
    with caplog.at_level(logging.INFO, logger="graft_hpo"):
        result = run_trial(config, tracking=False, hooks=[seen])
    assert result.status == "FINISHED", result.error
    assert torch.equal(seen.indices[0], proxy_ranking(config).subset(0.25))
    assert result.metrics["selection_s"] > 0.0  # the proxy's epoch and ranking are selection
    # the log says where that time went, not "selected ... in 0.00s" for the prefix
    lines = [r.getMessage() for r in caplog.records]
    proxy = [line for line in lines if "this trial's own proxy ranked 1079 samples" in line]
    assert len(proxy) == 1, lines
    picked = [line for line in lines if "selected" in line]
    assert picked and not any(" in 0.00s" in line for line in picked), picked
