"""Selectors by name: ``get_selector("graft", fraction=0.2)``, or from a pipeline's config."""

from __future__ import annotations

import difflib
from typing import Any

from graft_hpo.config import SelectionConfig
from graft_hpo.config import TrainConfig
from graft_hpo.exceptions import ConfigError
from graft_hpo.selection._base import Selector
from graft_hpo.selection._base import keyword_parameters
from graft_hpo.selection._graft import GraftSelector
from graft_hpo.selection._infobatch import InfoBatchSelector
from graft_hpo.selection._rank import PrefixSelector
from graft_hpo.selection._rank import Ranking
from graft_hpo.selection._simple import FullSelector
from graft_hpo.selection._simple import RandomSelector

__all__ = [
    "available_selectors",
    "build_selector",
    "get_selector",
    "selector_for",
    "uses_ranking",
]

_SELECTORS: dict[str, type[Selector]] = {
    cls.name: cls for cls in (GraftSelector, RandomSelector, FullSelector, InfoBatchSelector)
}


def available_selectors() -> list[str]:
    """Names accepted by :func:`get_selector`."""
    return sorted(_SELECTORS)


def get_selector(name: str, **params: Any) -> Selector:
    """Build a selector by name, refusing unknown names and parameters.

    Args:
        name: ``graft``, ``random``, ``full`` or ``infobatch``.
        **params: the selector's keyword-only constructor parameters.

    Raises:
        ConfigError: unknown name or parameter (the message lists the valid ones), or a
            parameter value out of range.

    Example:
        >>> get_selector("random", fraction=0.25)
        RandomSelector(fraction=0.25)
    """
    cls = _strategy(name)
    accepted = keyword_parameters(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        hints = [m for u in unknown for m in difflib.get_close_matches(u, accepted, n=1)]
        raise ConfigError(
            f"selector {name!r} takes {', '.join(accepted) or 'no parameters'}; "
            f"got unknown parameter(s) {', '.join(unknown)}"
            + (f" (did you mean {', '.join(map(repr, hints))}?)" if hints else "")
        )
    try:
        return cls(**params)
    except ValueError as err:
        raise ConfigError(f"selector {name!r}: {err}") from err


def build_selector(selection: SelectionConfig, train: TrainConfig) -> Selector:
    """The selector a pipeline's ``selection`` section describes (its strategy's
    :meth:`Selector.from_config`); ``train`` gives what some strategies take from it.

    Raises:
        ConfigError: unknown strategy, or a knob out of range.
    """
    cls = _strategy(selection.strategy)
    try:
        return cls.from_config(selection, train)
    except ValueError as err:
        raise ConfigError(f"selector {selection.strategy!r}: {err}") from err


def uses_ranking(selection: SelectionConfig) -> bool:
    """True when a model trained with ``selection`` takes a prefix of a ranking made once for
    many trainings (``graft`` with ``scope: sweep``); the one place that says so."""
    return selection.strategy == "graft" and selection.scope == "sweep"


def selector_for(
    selection: SelectionConfig,
    train: TrainConfig,
    ranking: Ranking | None = None,
    *,
    proxy: bool = False,
) -> Selector:
    """The selector a model trains with, decided here only: the ``proxy`` that ranks for a
    sweep trains on all the data (:class:`FullSelector`); with :func:`uses_ranking` and a
    ``ranking``, the budget's prefix of it (:class:`PrefixSelector`); otherwise what
    ``selection`` describes (:func:`build_selector`; ``ConfigError`` if it cannot be built).
    """
    if proxy:
        return FullSelector()
    if ranking is not None and uses_ranking(selection):
        return PrefixSelector.from_config(selection, train, ranking=ranking)
    return build_selector(selection, train)


def _strategy(name: str) -> type[Selector]:
    if name not in _SELECTORS:
        hint = difflib.get_close_matches(str(name), _SELECTORS, n=1)
        raise ConfigError(
            f"selection.strategy must be one of {', '.join(available_selectors())}; got {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
        )
    return _SELECTORS[name]
