"""Safe YAML reading with file/line/column errors, shared by pipelines and search spaces.

The loader is :class:`yaml.SafeLoader` (no arbitrary Python objects) with two fixes for
configuration files:

* a duplicated key in one mapping is an error: plain ``safe_load`` silently keeps the last
  one, so a second ``train:`` section would quietly replace the first;
* ``1e-3`` is a float, as in YAML 1.2. PyYAML follows YAML 1.1, which reads it as the *string*
  ``'1e-3'`` (it wants ``1.0e-3``), and ``--set train.lr=1e-3`` is what people type.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from graft_hpo.exceptions import ConfigError

__all__ = ["load_yaml", "parse_yaml_value"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads ``1e-3`` as a float."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key_node.value!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


# Copy the resolver table so that adding one does not change yaml.SafeLoader for everyone.
_ConfigLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _describe(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "unreadable YAML"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        context = f" ({error.context})" if error.context and error.problem else ""
        return f"invalid YAML{where}: {problem}{context}"
    return f"invalid YAML: {error}"


def load_yaml(path: str | os.PathLike[str]) -> Any:
    """Read one YAML document from a file, safely.

    Args:
        path: the file to read (UTF-8).

    Returns:
        The document as plain Python data (dicts, lists, str, int, float, bool, None), or None
        for an empty file.

    Raises:
        ConfigError: the file is missing or unreadable, or is not valid YAML; the message names
            the file and, for a syntax error, YAML's line and column (1-based).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"file {os.fspath(path)!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)}: not a UTF-8 text file ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {os.fspath(path)!r}: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as exc:
        raise ConfigError(f"{os.fspath(path)}: {_describe(exc)}") from None


def parse_yaml_value(text: str, *, what: str) -> Any:
    """Parse the value of one ``key=value`` override as YAML.

    ``3`` gives int 3, ``0.1`` and ``1e-3`` floats, ``null`` or nothing None, ``[1, 2]`` a list,
    anything else that YAML reads as text a string.

    Args:
        text: the value, as typed.
        what: how to name the value in an error, e.g. ``"override 'train.lr=[1'"``.

    Raises:
        ConfigError: the text is not valid YAML.
    """
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what}: {_describe(exc)}") from None
