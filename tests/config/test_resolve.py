"""Bundled-file lookup: paths first, then the installed package, then the source checkout."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import graft_hpo
from graft_hpo.config import _resolve
from graft_hpo.config import bundled_names
from graft_hpo.config import is_bundled_name
from graft_hpo.config import load_yaml
from graft_hpo.config import resolve_bundled
from graft_hpo.exceptions import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_name_resolves_to_the_source_checkout_file() -> None:
    assert resolve_bundled("pipelines", "mnist") == (REPO / "pipelines" / "mnist.yaml").resolve()


def test_an_existing_path_wins_over_a_bundled_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mnist").write_text("name: local\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_bundled("pipelines", "mnist") == tmp_path / "mnist"
    assert resolve_bundled("pipelines", tmp_path / "mnist") == tmp_path / "mnist"


def test_a_directory_is_not_a_pipeline(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        resolve_bundled("pipelines", tmp_path)


@pytest.mark.parametrize("given", ["mnist.yaml", "conf/mnist", "./x.yml"])
def test_path_like_names_are_not_looked_up(given: str) -> None:
    with pytest.raises(ConfigError, match=f"pipeline file '{given}' does not exist"):
        resolve_bundled("pipelines", given)


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        resolve_bundled("models", "cnn")


def test_search_spaces_use_the_same_machinery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "tiny.yaml").write_text("lr: {type: float}\n")
    (tmp_path / "search_spaces" / "notes.txt").write_text("not a space\n")
    monkeypatch.setattr(_resolve, "_SOURCE_ROOT", tmp_path)
    assert bundled_names("search_spaces") == ["tiny"]
    path = resolve_bundled("search_spaces", "tiny")
    assert load_yaml(path) == {"lr": {"type": "float"}}
    with pytest.raises(ConfigError) as info:
        resolve_bundled("search_spaces", "tiyn")
    assert str(info.value) == (
        "search space 'tiyn' is neither a file nor a bundled search space "
        "(did you mean 'tiny'?); bundled search spaces: tiny"
    )


def test_installed_package_is_searched_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a wheel installs: graft_hpo/_pipelines/ with the YAML files
    package = tmp_path / "_pipelines"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mnist.yaml").write_text("name: from_wheel\n")
    (package / "wheel_only.yaml").write_text("name: wheel_only\n")
    monkeypatch.setattr(graft_hpo, "__path__", [*graft_hpo.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "graft_hpo._pipelines", raising=False)
    importlib.invalidate_caches()
    try:
        assert resolve_bundled("pipelines", "mnist") == (package / "mnist.yaml").resolve()
        assert (
            resolve_bundled("pipelines", "wheel_only") == (package / "wheel_only.yaml").resolve()
        )
        # a name only the checkout has is still found; names are the union
        assert resolve_bundled("pipelines", "digits") == (REPO / "pipelines" / "digits.yaml")
        assert {"mnist", "digits", "wheel_only"} <= set(bundled_names("pipelines"))
    finally:
        sys.modules.pop("graft_hpo._pipelines", None)


def test_no_bundled_files_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_resolve, "_SOURCE_ROOT", tmp_path)
    assert bundled_names("pipelines") == []
    with pytest.raises(ConfigError, match="bundled pipelines: none found"):
        resolve_bundled("pipelines", "mnist")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("mnist", True),
        ("my-pipeline.v2", True),
        ("mnist.yaml", False),
        ("pipelines/mnist", False),
        ("my pipeline", False),
        (Path("mnist"), False),  # a Path is always a path
    ],
)
def test_is_bundled_name_is_the_rule_resolve_bundled_looks_names_up_by(
    given: str | Path, expected: bool
) -> None:
    assert is_bundled_name(given) is expected
    if not expected:  # read as a path: a missing one is "no such file", never a name lookup
        with pytest.raises(ConfigError, match="does not exist"):
            resolve_bundled("pipelines", given)
