"""Find bundled YAML files (pipelines, search spaces) by name, or take a path as it is.

A bundled file ``NAME.yaml`` of kind ``pipelines`` is looked up, in order, in

1. the package ``graft_hpo._pipelines`` (how an installed wheel ships the top-level folder);
2. the top-level ``pipelines/`` folder next to the ``graft_hpo`` package (a source checkout).

Search spaces work the same way with ``search_spaces`` / ``graft_hpo._search_spaces``.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.resources
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from graft_hpo.exceptions import ConfigError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["BUNDLED_KINDS", "bundled_names", "bundled_pipelines", "resolve_bundled"]

logger = logging.getLogger(__name__)

# folder / package suffix -> how a message names one file of that kind
BUNDLED_KINDS = {"pipelines": "pipeline", "search_spaces": "search space"}

# graft_hpo/config/_resolve.py -> the folder that holds graft_hpo/ (the repository root)
_SOURCE_ROOT = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _check_kind(kind: str) -> str:
    if kind not in BUNDLED_KINDS:
        # a programming error, not bad user input
        raise ValueError(f"kind must be one of {sorted(BUNDLED_KINDS)}; got {kind!r}")
    return BUNDLED_KINDS[kind]


def _sources(kind: str) -> list[Traversable]:
    sources: list[Traversable] = []
    # absent in a source checkout, where the files sit in the top-level folder
    with contextlib.suppress(ModuleNotFoundError, TypeError):
        sources.append(importlib.resources.files(f"graft_hpo._{kind}"))
    folder = _SOURCE_ROOT / kind
    if folder.is_dir():
        sources.append(folder)
    return sources


def bundled_names(kind: str) -> list[str]:
    """Names of the bundled files of one kind, sorted.

    Args:
        kind: ``"pipelines"`` or ``"search_spaces"``.

    Returns:
        File names without ``.yaml``, e.g. ``["cifar10", "digits", "mnist"]``.
    """
    _check_kind(kind)
    names: set[str] = set()
    for source in _sources(kind):
        for entry in source.iterdir():
            if entry.name.endswith(".yaml") and entry.is_file():
                names.add(entry.name[: -len(".yaml")])
    return sorted(names)


def bundled_pipelines() -> list[str]:
    """Names of the bundled pipelines (``graft-hpo sweep NAME``), sorted."""
    return bundled_names("pipelines")


def is_bundled_name(path_or_name: str | os.PathLike[str]) -> bool:
    """Whether ``path_or_name`` reads as the name of a bundled file (``"mnist"``): a string with
    no folder, no ``.yaml``/``.yml`` suffix and only letters, digits, ``_``, ``.`` and ``-``;
    anything else is a path."""
    return (
        isinstance(path_or_name, str)
        and _NAME.match(path_or_name) is not None
        and not path_or_name.endswith((".yaml", ".yml"))
    )


def resolve_bundled(kind: str, path_or_name: str | os.PathLike[str]) -> Path:
    """Turn a path or the name of a bundled file into the path of a YAML file.

    An existing file wins; otherwise a plain name (no folder, no ``.yaml``/``.yml`` suffix) is
    looked up among the bundled files of ``kind``.

    Args:
        kind: ``"pipelines"`` or ``"search_spaces"``.
        path_or_name: a path to a YAML file, or a bundled name such as ``"mnist"``.

    Returns:
        The absolute path of the file.

    Raises:
        ConfigError: no such file, or an unknown name; the message lists the bundled names and
            suggests the closest one.
        ValueError: ``kind`` is not a known kind.
    """
    noun = _check_kind(kind)
    given = os.fspath(path_or_name)
    path = Path(given).expanduser()
    if path.is_file():
        return path.resolve()
    if path.exists():
        raise ConfigError(f"{noun} {given!r} is a directory, not a YAML file")
    if not is_bundled_name(path_or_name):
        raise ConfigError(f"{noun} file {given!r} does not exist")
    for source in _sources(kind):
        candidate = source / f"{given}.yaml"
        # a zip-imported package yields no real path; the source checkout may still have one
        if isinstance(candidate, Path) and candidate.is_file():
            logger.debug("bundled %s %r -> %s", noun, given, candidate)
            return candidate.resolve()
    names = bundled_names(kind)
    close = difflib.get_close_matches(given, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = ", ".join(names) if names else "none found"
    raise ConfigError(
        f"{noun} {given!r} is neither a file nor a bundled {noun}{hint}; "
        f"bundled {noun}s: {listing}"
    )
