"""The one exception hierarchy of graft-hpo.

Every error a user can cause derives from :class:`GraftHPOError`. Bad input (configuration,
search space, arguments, plug-ins, data files) raises :class:`ConfigError`, which the CLI turns
into one line and exit code 2; everything else that goes wrong at run time is exit code 1.
"""

from __future__ import annotations

__all__ = ["ConfigError", "GraftHPOError", "TrialFailedError"]


class GraftHPOError(Exception):
    """Root of every graft-hpo error."""


class ConfigError(GraftHPOError, ValueError):
    """Bad input: a configuration key, a search space, an argument, a plug-in or a data file.

    Args:
        errors: one message per problem, each of the form
            ``"<dotted.key> must be <constraint>; got <value!r>"``. All problems found are
            reported together, since a sweep launch is costly.
    """

    def __init__(self, errors: str | list[str]) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors) if len(self.errors) > 1 else self.errors[0])


class TrialFailedError(GraftHPOError, RuntimeError):
    """A trial could not finish (non-finite loss, out of memory, a plug-in that raised)."""
