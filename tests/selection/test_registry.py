"""Selectors by name, the two baselines, and a contract every registered selector passes."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.utils.data import Subset

from graft_hpo.config import SelectionConfig
from graft_hpo.config import TrainConfig
from graft_hpo.exceptions import ConfigError
from graft_hpo.selection import FullSelector
from graft_hpo.selection import GraftSelector
from graft_hpo.selection import RandomSelector
from graft_hpo.selection import Selection
from graft_hpo.selection import Selector
from graft_hpo.selection import available_selectors
from graft_hpo.selection import build_selector
from graft_hpo.selection import get_selector

from ._data import InMemory
from ._data import make_mlp


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- get_selector --------------------------------------------------------------------------


def test_available_selectors() -> None:
    assert available_selectors() == ["full", "graft", "infobatch", "random"]


@pytest.mark.parametrize(
    ("name", "params", "cls"),
    [
        ("graft", {"fraction": 0.2, "batch_size": 64, "weighted": True}, GraftSelector),
        ("random", {"fraction": 0.25}, RandomSelector),
        ("full", {}, FullSelector),
    ],
)
def test_get_selector_builds_the_named_selector(name: str, params: dict, cls: type) -> None:
    selector = get_selector(name, **params)
    assert type(selector) is cls
    assert selector.name == name
    for key, value in params.items():
        assert getattr(selector, key) == value


def test_repr_shows_the_parameters() -> None:
    assert repr(get_selector("random", fraction=0.25)) == "RandomSelector(fraction=0.25)"
    assert "alignment_threshold=0.9" in repr(get_selector("graft"))


def test_unknown_name_lists_valid_names_and_suggests_a_close_match() -> None:
    with pytest.raises(ConfigError) as info:
        get_selector("graf")
    message = str(info.value)
    assert message == (
        "selection.strategy must be one of full, graft, infobatch, random; got 'graf' "
        "(did you mean 'graft'?)"
    )
    assert isinstance(info.value, ValueError)


def test_unknown_name_without_close_match_has_no_hint() -> None:
    with pytest.raises(ConfigError, match=r"one of full, graft, infobatch, random; got 'craig'$"):
        get_selector("craig")


def test_unknown_parameter_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        get_selector("graft", fraction=0.2, fractoin=0.3, budget=5)
    message = str(info.value)
    assert "unknown parameter(s) budget, fractoin" in message
    for accepted in ("fraction", "alignment_threshold", "features", "rank", "batch_size"):
        assert accepted in message.split("got")[0]


@pytest.mark.parametrize("param", ["fraction", "args", "kwargs"])
def test_parameterless_selector_refuses_every_parameter(param: str) -> None:
    # FullSelector has no __init__ of its own: object's (*args, **kwargs) must not leak
    # through as "accepted" names, nor turn into a TypeError
    with pytest.raises(ConfigError, match=rf"selector 'full' takes no parameters; .*{param}"):
        get_selector("full", **{param: 0.3})


def test_unknown_parameter_suggests_a_close_match() -> None:
    # project rule: an unknown name comes with a close-match suggestion
    with pytest.raises(ConfigError, match=r"did you mean 'fraction'\?"):
        get_selector("random", fractoin=0.3)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("graft", {"fraction": 1.5}, r"fraction must be in \(0, 1\]; got 1.5"),
        ("graft", {"alignment_threshold": -0.2}, r"alignment_threshold must be in \(0, 1\]"),
        ("graft", {"features": "pixels"}, r"selection.features must be one of 'embedding', 'raw'"),
        ("graft", {"levels": 0}, r"levels must be >= 1; got 0"),
        ("random", {"fraction": 0.0}, r"fraction must be in \(0, 1\]; got 0.0"),
    ],
)
def test_out_of_range_value_is_a_config_error(name: str, params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"selector '{name}': .*{message}"):
        get_selector(name, **params)


# --- build_selector: a pipeline's selection section ----------------------------------------


@pytest.mark.parametrize("name", available_selectors())
def test_the_pipelines_defaults_are_the_selectors_defaults(name: str) -> None:
    # one declaration per knob: SelectionConfig's defaults are the constructors' defaults
    built = build_selector(SelectionConfig(strategy=name), TrainConfig(epochs=1))
    assert repr(built) == repr(get_selector(name))


def test_build_selector_takes_every_knob_from_the_config() -> None:
    knobs = {
        "fraction": 0.2,
        "alignment_threshold": 0.5,
        "features": "raw",
        "rank": 4,
        "stratify": False,
        "weighted": True,
        "maxvol_tol": 1.5,
        "pool": 2.0,
    }
    selection = SelectionConfig(**knobs, prune_ratio=0.25, anneal=0.5)
    graft = build_selector(selection, TrainConfig(batch_size=64))
    assert isinstance(graft, GraftSelector)
    assert {knob: getattr(graft, knob) for knob in knobs} == knobs
    assert graft.batch_size == 64  # selection.batch_size null: the training batch size
    own = build_selector(dataclasses.replace(selection, batch_size=32), TrainConfig())
    assert isinstance(own, GraftSelector) and own.batch_size == 32
    info = build_selector(dataclasses.replace(selection, strategy="infobatch"), TrainConfig())
    assert repr(info) == "InfoBatchSelector(prune_ratio=0.25, anneal=0.5, epochs=10)"


def test_build_selector_refuses_what_the_config_refuses() -> None:
    with pytest.raises(ConfigError, match=r"selector 'graft': selection.batch_size must be"):
        build_selector(SelectionConfig(), TrainConfig(batch_size=1))
    with pytest.raises(ConfigError, match=r"selection.strategy must be one of .*'craig'"):
        build_selector(SelectionConfig(strategy="craig"), TrainConfig())


# --- baselines -----------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.33, 0.5, 0.999])
def test_random_selector_budget_distinct_seeded(digits: InMemory, fraction: float) -> None:
    n = len(digits)
    selector = RandomSelector(fraction=fraction)
    model = make_mlp(0)
    sel = selector.select(model, digits, generator=_gen(1))
    assert len(sel.indices) == math.floor(fraction * n)
    assert torch.equal(sel.indices, sel.indices.unique())
    assert int(sel.indices.min()) >= 0 and int(sel.indices.max()) < n
    assert sel.fraction == len(sel.indices) / n
    assert sel.weights is None
    assert torch.equal(selector.select(model, digits, generator=_gen(1)).indices, sel.indices)
    if 0.05 < fraction < 0.95:
        assert not torch.equal(
            selector.select(model, digits, generator=_gen(2)).indices, sel.indices
        )


def test_random_selector_is_uniform(digits: InMemory) -> None:
    counts = torch.zeros(len(digits))
    selector = RandomSelector(fraction=0.2)
    for seed in range(200):
        counts[selector.select(make_mlp(0), digits, generator=_gen(seed)).indices] += 1
    # each sample is drawn ~Binomial(200, 0.2): mean 40, sd ~5.7
    assert int(counts.sum()) == 200 * 359
    assert float(counts.min()) > 15 and float(counts.max()) < 70


def test_random_selector_rejects_bad_fraction() -> None:
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]; got 1.2"):
        RandomSelector(fraction=1.2)


def test_full_selector_selects_everything(digits: InMemory) -> None:
    sel = FullSelector().select(make_mlp(0), digits)
    assert torch.equal(sel.indices, torch.arange(len(digits)))
    assert sel.fraction == 1.0
    assert sel.weights is None


# --- the contract of every registered selector ---------------------------------------------

_PARAMS = {
    "graft": {"fraction": 0.2, "batch_size": 64},
    "random": {"fraction": 0.2},
    "full": {},
    "infobatch": {"prune_ratio": 0.5, "epochs": 4},
}


@pytest.fixture(params=available_selectors())
def selector(request: pytest.FixtureRequest) -> Selector:
    return get_selector(request.param, **_PARAMS[request.param])


def _check(sel: Selection, n: int) -> None:
    assert isinstance(sel, Selection)
    assert sel.indices.dtype == torch.int64
    assert torch.equal(sel.indices, sel.indices.unique())
    assert int(sel.indices.min()) >= 0 and int(sel.indices.max()) < n
    assert sel.fraction == len(sel.indices) / n
    if sel.weights is not None:
        assert sel.weights.shape == sel.indices.shape
    assert "selection_s" in sel.stats


def test_contract_valid_seeded_selection(selector: Selector, digits: InMemory) -> None:
    model = make_mlp(0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    a = selector.select(model, digits, generator=_gen(3))
    b = selector.select(model, digits, generator=_gen(3))
    _check(a, len(digits))
    assert torch.equal(a.indices, b.indices)
    budget = math.floor(_PARAMS[selector.name].get("fraction", 1.0) * len(digits))
    assert len(a.indices) <= budget
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_contract_subset_of_an_in_memory_dataset(selector: Selector, digits: InMemory) -> None:
    """A ``Subset`` is indexed in its own positions, like the equivalent copied data set."""
    keep = torch.randperm(len(digits), generator=_gen(4))[:700]
    x, y = digits.tensors
    model = make_mlp(1)
    via_subset = selector.select(model, Subset(digits, keep.tolist()), generator=_gen(5))
    copied = selector.select(model, InMemory(x[keep], y[keep]), generator=_gen(5))
    _check(via_subset, 700)
    assert torch.equal(via_subset.indices, copied.indices)


def test_every_strategy_validation_accepts_has_a_selector_and_no_other() -> None:
    """config.STRATEGIES (what `selection.strategy` may be) and the selection registry name
    the same strategies: a new selector is added to both, or validation refuses it."""
    from graft_hpo.config import STRATEGIES
    from graft_hpo.selection import available_selectors

    assert sorted(STRATEGIES) == available_selectors()


def test_a_budget_is_the_floor_of_the_decimal_fraction_times_n() -> None:
    from fractions import Fraction

    from graft_hpo.selection._base import budget_of

    # against exact arithmetic: the binary float's product fell one sample short of e.g.
    # 0.29 x 100 = 29, 0.57 x 5000 = 2850, 0.58 x 3000 = 1740
    for percent in range(1, 101):
        fraction = percent / 100
        for n in (1, 7, 100, 1079, 3000, 5000, 45000):
            expected = max(1, min(n, int(Fraction(percent, 100) * n)))
            assert budget_of(fraction, n) == expected, (fraction, n)
    assert budget_of(1e-5, 1000) == 1  # never empty
