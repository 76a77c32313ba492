"""A tiny name -> builder registry shared by :mod:`graft_hpo.data` and :mod:`graft_hpo.models`.

A :class:`Registry` maps lowercase names to builder callables. Builders are registered with a
decorator when their family module is imported; heavy dependencies (mlxtend, scikit-learn,
torchvision) are imported inside the builders, so looking a name up is cheap.

A name of the form ``"package.module:attr"`` is a **plug-in**: the module is imported and the
attribute returned. Plug-ins run the user's code, with the user's permissions, at import time and
when called; graft-hpo does not sandbox them. Only name plug-ins you trust.

Example:
    >>> reg = Registry("model")
    >>> @reg.register("tiny")
    ... def tiny(input_shape, num_classes, *, width=8):
    ...     return width
    >>> reg.get("tiny")((1, 8, 8), 10, width=4)
    4
    >>> try:
    ...     check_options(tiny, {"widht": 3}, section="model", owner="model 'tiny'",
    ...                   positional=("input_shape", "num_classes"))
    ... except ConfigError as exc:
    ...     print(exc)
    unknown key 'model.options.widht' for model 'tiny' (did you mean 'width'?); accepted: width
"""

from __future__ import annotations

import difflib
import importlib
import importlib.machinery
import inspect
import logging
import os
import sys
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graft_hpo.exceptions import ConfigError

__all__ = [
    "Fallback",
    "Registry",
    "add_plugin_path",
    "call_plugin",
    "check_float",
    "check_int",
    "check_options",
    "is_plugin",
    "load_plugin",
    "user_line",
]

logger = logging.getLogger(__name__)

Builder = Callable[..., Any]


@dataclass(frozen=True)
class Fallback:
    """A second source of names, resolved lazily when a name is not registered.

    Attributes:
        description: how error messages name it, e.g. ``"a torchvision model"``.
        names: returns every name it knows (used for close-match suggestions only).
        resolve: returns the builder for a name, or None when it does not know the name.
    """

    description: str
    names: Callable[[], Iterable[str]]
    resolve: Callable[[str], Builder | None]


def is_plugin(name: str) -> bool:
    """Whether ``name`` is a ``"package.module:attr"`` plug-in spec rather than a registry name."""
    return ":" in name


def load_plugin(spec: str, *, section: str) -> Builder:
    """Import ``"package.module:attr"`` and return the callable it names.

    This runs the user's module-level code. ``attr`` may be dotted (``"pkg.mod:Class.build"``).

    Args:
        spec: the plug-in spec.
        section: the config section for messages (``"data"`` -> ``data.name``).

    Raises:
        ConfigError: a malformed spec, a failed import, a missing attribute, or a non-callable.
    """
    key = f"{section}.name"
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr or ":" in attr:
        raise ConfigError(
            f"{key} must be a registered name or 'package.module:attr'; got {spec!r}"
        )
    _check_not_shadowed(module_name.partition(".")[0], f"{key} {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        hint = ""
        top = module_name.partition(".")[0]
        if isinstance(exc, ModuleNotFoundError) and exc.name == top:
            hint = _search_hint(module_name)
        raise ConfigError(f"{key} {spec!r} could not be imported: {exc}{hint}") from exc
    except Exception as exc:  # the plug-in's own module code raised
        reason = f"{type(exc).__name__}: {exc}"
        raise ConfigError(f"{key} {spec!r} could not be imported: {reason}") from exc
    path = module_name
    for part in attr.split("."):
        if not hasattr(obj, part):
            reason = f"module {module_name!r} has no attribute {attr!r}"
            if path != module_name:
                reason = f"{path!r} has no attribute {part!r}"
            raise ConfigError(f"{key} {spec!r} could not be imported: {reason}")
        obj = getattr(obj, part)
        path = f"{path}.{part}"
    if not callable(obj):
        raise ConfigError(f"{key} {spec!r} must name a callable; got {type(obj).__name__}")
    logger.debug("loaded plug-in %s for %s", spec, key)
    return obj


def _check_not_shadowed(top: str, where: str) -> None:
    """Refuse a module name already imported in this process from another file than the one
    ``sys.path`` finds now: two pipelines, each with a ``plug.py`` beside it, run in one process
    would otherwise both get the first one's code, silently."""
    loaded = getattr(sys.modules.get(top), "__file__", None)
    if loaded is None:
        return
    found = importlib.machinery.PathFinder.find_spec(top, sys.path)
    origin = getattr(found, "origin", None)
    if origin is None or os.path.realpath(origin) == os.path.realpath(loaded):
        return
    if not any(origin.startswith(os.path.join(f, "")) for f in _PLUGIN_FOLDERS):
        return  # not a pipeline's plug-in folder (an installed package's own finder, say)
    raise ConfigError(
        f"{where}: module {top!r} is already imported in this process from {loaded}, but this "
        f"pipeline's plugin_path finds {origin}; give the two modules distinct names, or run "
        "each pipeline in its own process"
    )


_PLUGIN_FOLDERS: list[str] = []  # the folders add_plugin_path put on sys.path, in order


def add_plugin_path(folders: Iterable[str]) -> None:
    """Put ``folders`` (a pipeline's ``plugin_path``) first on ``sys.path``, once each.

    Plug-in modules beside a pipeline file or in the working directory the pipeline was loaded
    from then import as they would in a script run there, in the CLI and in every Ray worker
    (which receives the config, absolute paths included). Missing folders are skipped: on a
    cluster node the code comes with Ray's runtime environment instead.
    """
    folders = list(folders)
    _PLUGIN_FOLDERS.extend(f for f in folders if f not in _PLUGIN_FOLDERS)
    for folder in reversed(folders):
        if os.path.isdir(folder) and folder not in sys.path:
            sys.path.insert(0, folder)


def _search_hint(module_name: str) -> str:
    folders = [*_PLUGIN_FOLDERS, os.getcwd()]
    searched = ", ".join(dict.fromkeys(folders))
    file = module_name.replace(".", "/") + ".py"
    return (
        f" (searched {searched}, then sys.path; put {file} beside the pipeline file or in the "
        "working directory, list its folder in plugin_path, or pip install its package)"
    )


def call_plugin(
    function: Builder,
    args: Sequence[Any],
    options: Mapping[str, Any],
    *,
    section: str,
    spec: str,
    expected: str = "",
) -> Any:
    """Call a plug-in; what it raises becomes a :class:`ConfigError` naming the plug-in.

    The message keeps the error's type and text, the plug-in's own line that raised and how
    it was called; the original is chained (``--debug`` shows its traceback).
    """
    try:
        return function(*args, **options)
    except ConfigError:
        raise
    except Exception as exc:
        where = user_line(exc, function)
        shown = ", ".join([*(repr(a) for a in args), *(f"{k}={v!r}" for k, v in options.items())])
        called = f"{spec.partition(':')[2]}({shown})"
        raise ConfigError(
            f"{section}.name {spec!r} raised {type(exc).__name__}: {exc}{where} when called as "
            f"{called}{expected}"
        ) from exc


def user_line(exc: BaseException, function: Builder) -> str:
    """`` at file.py:LINE``: the deepest line of the plug-in's own file in the traceback."""
    code = getattr(function, "__code__", None)
    own = code.co_filename if code is not None else None
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == own:
            found = f" at {os.path.basename(filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _close_match(name: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


class Registry:
    """Lowercase name -> builder, with plug-in specs and an optional lazy fallback.

    Args:
        section: the config section the names live in (``"data"``, ``"model"``); messages
            then name ``<section>.name``.
        fallback: resolves names that are not registered (e.g. torchvision models).
    """

    def __init__(self, section: str, *, fallback: Fallback | None = None) -> None:
        self.section = section
        self.fallback = fallback
        self._builders: dict[str, Builder] = {}

    def register(self, name: str) -> Callable[[Builder], Builder]:
        """Decorator registering a builder under a lowercase ``name``."""
        if name != name.lower() or not name or is_plugin(name):
            raise ValueError(f"registry names must be lowercase and contain no ':'; got {name!r}")

        def decorator(builder: Builder) -> Builder:
            if name in self._builders:
                raise ValueError(f"{self.section} {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return decorator

    def names(self) -> list[str]:
        """The registered names, sorted (the fallback's names are not included)."""
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._builders

    def get(self, name: str) -> Builder:
        """Resolve a registered name, the fallback, or a ``"package.module:attr"`` plug-in.

        Raises:
            ConfigError: an unknown name (listing the valid ones and a close match) or a
                plug-in that cannot be loaded.
        """
        key = f"{self.section}.name"
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{key} must be a non-empty string; got {name!r}")
        if is_plugin(name):
            return load_plugin(name, section=self.section)
        lowered = name.lower()
        if lowered in self._builders:
            return self._builders[lowered]
        if self.fallback is not None:
            builder = self.fallback.resolve(lowered)
            if builder is not None:
                return builder
        raise ConfigError(self._unknown_message(name))

    def _unknown_message(self, name: str) -> str:
        valid = ", ".join(self.names())
        extra = f", or {self.fallback.description}" if self.fallback is not None else ""
        candidates = list(self._builders)
        if self.fallback is not None:
            candidates += self.fallback.names()
        match = _close_match(name.lower(), candidates)
        hint = f" (did you mean {match!r}?)" if match else ""
        return (
            f"{self.section}.name must be one of {valid}, or 'module:attr'{extra}; "
            f"got {name!r}{hint}"
        )


def check_options(
    builder: Builder,
    options: Mapping[str, Any],
    *,
    section: str,
    owner: str,
    positional: Sequence[str] = (),
) -> None:
    """Check ``options`` against the keyword parameters ``builder`` accepts; never drop any.

    ``builder`` is called as ``builder(*positional_values, **options)``. Builders taking
    ``**kwargs`` accept any key (the builder itself must then complain).

    Args:
        builder: the callable the options will be passed to as keywords.
        options: ``<section>.options`` from the config.
        section: ``"data"`` or ``"model"``.
        owner: how messages name the builder, e.g. ``"model 'mlp'"``.
        positional: what graft-hpo passes positionally before the options (e.g.
            ``("input_shape", "num_classes")``); the builder's first parameters take them,
            whatever their names.

    Raises:
        ConfigError: one message per unknown or missing required key, or a builder that
            cannot take the positional arguments.
    """
    try:
        params = list(inspect.signature(builder).parameters.values())
    except (TypeError, ValueError):  # some C callables have no signature: nothing to check
        return
    kinds = inspect.Parameter
    positionable = [
        p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
    ]
    takes_args = any(p.kind is kinds.VAR_POSITIONAL for p in params)
    if len(positionable) < len(positional) and not takes_args:
        wanted = ", ".join([*positional, "**options"])
        raise ConfigError(
            f"{section}.name: {owner} must accept ({wanted}); its signature is "
            f"{inspect.signature(builder)}"
        )
    filled = {p.name for p in positionable[: len(positional)]}
    errors = [
        f"{section}.options.{key} is passed by graft-hpo to {owner} as an argument; remove it"
        for key in options
        if key in filled
    ]
    keywordable = (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
    accepted = sorted(p.name for p in params if p.kind in keywordable and p.name not in filled)
    if not any(p.kind is kinds.VAR_KEYWORD for p in params):
        for key in options:
            if key in filled or key in accepted:
                continue
            match = _close_match(str(key), accepted)
            hint = f" (did you mean {match!r}?)" if match else ""
            listed = ", ".join(accepted) if accepted else "none"
            errors.append(
                f"unknown key '{section}.options.{key}' for {owner}{hint}; accepted: {listed}"
            )
    for p in params:
        required = p.default is kinds.empty and p.kind in (*keywordable, kinds.POSITIONAL_ONLY)
        if required and p.name not in filled and p.name not in options:
            errors.append(f"{section}.options.{p.name} is required by {owner}; got nothing")
    if errors:
        raise ConfigError(errors)


def check_int(value: Any, key: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int, or raise ``ConfigError("<key> must be an integer ...")``."""
    bound = f" >= {minimum}" if minimum is not None else ""
    if isinstance(value, bool) or not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer()):
            raise ConfigError(f"{key} must be an integer{bound}; got {value!r}")
        value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key} must be an integer{bound}; got {value!r}")
    return int(value)


def check_float(
    value: Any,
    key: str,
    *,
    low: float | None = None,
    high: float | None = None,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float in ``[low, high]`` (``[low, high)`` with ``high_open``)."""
    parts = []
    if low is not None:
        parts.append(f">= {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    bound = f" {' and '.join(parts)}" if parts else ""
    message = f"{key} must be a number{bound}; got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(message)
    number = float(value)
    if number != number:  # NaN
        raise ConfigError(message)
    if low is not None and number < low:
        raise ConfigError(message)
    if high is not None and (number >= high if high_open else number > high):
        raise ConfigError(message)
    return number
