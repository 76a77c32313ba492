"""Every example in the package's docstrings runs and prints what it says (an example marked
``# doctest: +SKIP`` needs a model or data that a docstring cannot build)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import graft_hpo

MODULES = sorted(m.name for m in pkgutil.walk_packages(graft_hpo.__path__, prefix="graft_hpo."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
