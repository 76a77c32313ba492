"""The shared registry: names, plug-in specs, option checking."""

from __future__ import annotations

import re

import pytest

from graft_hpo._registry import Fallback
from graft_hpo._registry import Registry
from graft_hpo._registry import check_float
from graft_hpo._registry import check_int
from graft_hpo._registry import check_options
from graft_hpo._registry import load_plugin
from graft_hpo.exceptions import ConfigError
from tests.plugins import toy


def _registry() -> Registry:
    reg = Registry(
        "thing",
        fallback=Fallback("an extra thing", lambda: ["zeta"], lambda n: {"zeta": len}.get(n)),
    )

    @reg.register("alpha")
    def alpha(x, *, size=1):
        return x * size

    return reg


def test_register_get_and_case():
    reg = _registry()
    assert reg.names() == ["alpha"] and "ALPHA" in reg and "zeta" not in reg
    assert reg.get("Alpha")(2, size=3) == 6
    assert reg.get("zeta") is len
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha")(lambda: None)
    with pytest.raises(ValueError, match="lowercase"):
        reg.register("Beta")


def test_unknown_names():
    reg = _registry()
    with pytest.raises(ConfigError) as err:
        reg.get("alpah")
    assert str(err.value) == (
        "thing.name must be one of alpha, or 'module:attr', or an extra thing; "
        "got 'alpah' (did you mean 'alpha'?)"
    )
    with pytest.raises(ConfigError, match=re.escape("got 'zetaa' (did you mean 'zeta'?)")):
        reg.get("zetaa")
    with pytest.raises(ConfigError, match=re.escape("got 'qqq'") + "$"):
        reg.get("qqq")
    with pytest.raises(
        ConfigError, match=re.escape("thing.name must be a non-empty string; got ''")
    ):
        reg.get("")


def test_plugin_specs():
    assert _registry().get("tests.plugins.toy:mlp") is toy.mlp
    assert load_plugin("tests.plugins.toy:Named.__len__", section="data") is toy.Named.__len__
    cases = {
        "tests.plugins.toy:": (
            "data.name must be a registered name or 'package.module:attr'; got "
            "'tests.plugins.toy:'"
        ),
        ":fn": "data.name must be a registered name or 'package.module:attr'; got ':fn'",
        "tests.plugins.toy:NOT_CALLABLE": (
            "data.name 'tests.plugins.toy:NOT_CALLABLE' must name a callable; got int"
        ),
        "tests.plugins.broken:fn": (
            "data.name 'tests.plugins.broken:fn' could not be imported: RuntimeError: broken on "
            "purpose"
        ),
        "tests.plugins.toy:Named.nope": (
            "data.name 'tests.plugins.toy:Named.nope' could not be imported: "
            "'tests.plugins.toy.Named' has no attribute 'nope'"
        ),
    }
    for spec, message in cases.items():
        with pytest.raises(ConfigError) as err:
            load_plugin(spec, section="data")
        assert str(err.value) == message


def test_check_options_reports_every_problem_at_once():
    def builder(shape, classes, *, width=1, depth):
        return None

    with pytest.raises(ConfigError) as err:
        check_options(
            builder,
            {"widht": 2, "shape": 1},
            section="model",
            owner="model 'b'",
            positional=("input_shape", "num_classes"),
        )
    assert err.value.errors == [
        "model.options.shape is passed by graft-hpo to model 'b' as an argument; remove it",
        "unknown key 'model.options.widht' for model 'b' (did you mean 'width'?); accepted: "
        "depth, width",
        "model.options.depth is required by model 'b'; got nothing",
    ]
    check_options(
        builder, {"depth": 1, "width": 3}, section="model", owner="m", positional=("a", "b")
    )
    check_options(lambda **kw: None, {"anything": 1}, section="data", owner="d")


def test_number_checks():
    assert check_int(3.0, "k", minimum=1) == 3
    for bad in (True, 2.5, "3", 0):
        with pytest.raises(ConfigError, match=r"^k must be an integer >= 1; got "):
            check_int(bad, "k", minimum=1)
    assert check_float(1, "f", low=0.0, high=1.0) == 1.0
    for bad in (float("nan"), 1.0, -0.1, "x", None):
        with pytest.raises(ConfigError, match=r"^f must be a number >= 0.0 and < 1.0; got "):
            check_float(bad, "f", low=0.0, high=1.0, high_open=True)
