"""The search space's classes, and reading one from YAML and checking it against a pipeline.

Parsing needs no Optuna; only sampling calls a trial's ``suggest_*`` methods. The format is
described in :mod:`graft_hpo.space`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import Protocol

from graft_hpo.config import apply_overrides
from graft_hpo.config import load_yaml
from graft_hpo.config import resolve_bundled
from graft_hpo.exceptions import ConfigError
from graft_hpo.space._checks import check_space_data
from graft_hpo.space._conditions import Condition
from graft_hpo.space._conditions import Scalar
from graft_hpo.space._conditions import holds

if TYPE_CHECKING:
    from graft_hpo.config import PipelineConfig

__all__ = ["ParamSpec", "SearchSpace", "load_space", "space_from_dict", "validate_space"]

logger = logging.getLogger(__name__)

ParamType = Literal["float", "int", "categorical"]


class Trial(Protocol):
    """What sampling asks of a trial: the ``suggest_*`` methods of ``optuna.trial.BaseTrial``."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int, log: bool) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None, log: bool
    ) -> float: ...


# Read by the driver before any trial starts (or, select and retrain, after the last one), so a
# sampled value would silently do nothing.
_FIXED_SECTIONS = ("name", "search", "tracking", "resources", "select", "retrain")


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter.

    Attributes:
        name: the dotted config path, also the Optuna and MLflow parameter name.
        type: ``"float"``, ``"int"`` or ``"categorical"``.
        low: smallest value (float/int), inclusive.
        high: largest value (float/int), inclusive.
        log: sample on a log scale (float/int; needs ``low > 0``).
        step: discretisation step (float/int); None for a continuous float, 1 for an int.
        choices: the values of a categorical parameter.
        when: the conditions that must all hold for it to be sampled; () to always sample it.
    """

    name: str
    type: ParamType
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Scalar, ...] | None = None
    when: tuple[Condition, ...] = ()

    def suggest(self, trial: Trial) -> Any:
        """Ask ``trial`` for this parameter's value (``trial.suggest_*`` under ``name``).

        Raises:
            ValueError: a float or int spec built by hand without ``low`` and ``high``.
        """
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices or ()))
        if self.low is None or self.high is None:
            raise ValueError(f"{self.name}: a {self.type} parameter needs low and high")
        if self.type == "int":
            step = 1 if self.step is None else int(self.step)
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=step, log=self.log
            )
        step_f = None if self.step is None else float(self.step)
        return trial.suggest_float(
            self.name, float(self.low), float(self.high), step=step_f, log=self.log
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as written in YAML (``space_from_dict`` reads it back)."""
        data: dict[str, Any] = {"type": self.type}
        if self.type == "categorical":
            data["choices"] = list(self.choices or ())
        else:
            data.update(low=self.low, high=self.high)
            if self.log:
                data["log"] = True
            if self.step is not None:
                data["step"] = self.step
        if self.when:
            data["when"] = " and ".join(map(str, self.when))
        return data


@dataclass(frozen=True)
class SearchSpace:
    """An ordered search space: parameters are sampled in this order.

    Attributes:
        params: the parameters, in file order (a condition names only earlier ones).
        source: the file it was read from, named in error messages; None for plain data.
    """

    params: tuple[ParamSpec, ...]
    source: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The dotted names of all parameters, in sampling order."""
        return tuple(spec.name for spec in self.params)

    def sample(self, trial: Trial) -> dict[str, Any]:
        """The define-by-run body: suggest every parameter whose condition holds.

        Args:
            trial: an Optuna trial (or Ray's wrapper around one); only its ``suggest_*``
                methods are called, each with the parameter's dotted name.

        Returns:
            ``{dotted_name: value}`` of the active parameters, in sampling order.
        """
        values: dict[str, Any] = {}
        for spec in self.params:
            if holds(spec.when, values):
                values[spec.name] = spec.suggest(trial)
        return values

    def to_dict(self) -> dict[str, Any]:
        """``{"params": {name: spec}}``, as in the YAML file (without its comments)."""
        return {"params": {spec.name: spec.to_dict() for spec in self.params}}

    def error(self, errors: list[str]) -> ConfigError:
        """The error for problems found in this space: the first message names its file."""
        return _error(errors, self.source)


def _error(errors: list[str], source: str | None) -> ConfigError:
    # the file is named once, on the first message, so a list of problems stays readable
    where = f"search space {source}" if source else "search space"
    return ConfigError([f"{where}: {errors[0]}", *errors[1:]])


def space_from_dict(data: Any, *, source: str | None = None) -> SearchSpace:
    """Check and build a search space from plain data (a parsed search-space YAML).

    Args:
        data: ``{"params": {dotted_name: {"type": ..., ...}, ...}}``; mapping order is the
            sampling order.
        source: where the data came from (a file), named in the first error message.

    Returns:
        The search space. Config paths are not checked here: see :func:`validate_space`.

    Raises:
        ConfigError: every problem found, each naming its key, what was expected and what
            was given.
    """
    fields, errors = check_space_data(data)
    if errors:
        raise _error(errors, source)
    return SearchSpace(tuple(ParamSpec(**kwargs) for kwargs in fields), source)


def load_space(
    path_or_name: str | os.PathLike[str], *, base_dir: str | None = None
) -> SearchSpace:
    """Read and check a search-space YAML file.

    Args:
        path_or_name: a YAML file, or the name of a bundled space (``"mnist"`` ->
            ``search_spaces/mnist.yaml``).
        base_dir: folder that a relative path is read from first (e.g. the pipeline's folder);
            None: the current directory.

    Returns:
        The search space, with ``source`` set to the file's absolute path.

    Raises:
        ConfigError: a missing file, an unknown bundled name, invalid YAML, or every problem in
            the content.
    """
    given = os.fspath(path_or_name)
    if base_dir is not None and not Path(given).expanduser().is_absolute():
        candidate = Path(base_dir).expanduser() / given
        if candidate.is_file():
            given = str(candidate)
    path = resolve_bundled("search_spaces", given)
    logger.debug("loading search space %s", path)
    return space_from_dict(load_yaml(path), source=str(path))


def _probe_values(spec: ParamSpec) -> list[tuple[str, Any]]:
    if spec.type == "categorical":
        return [(f"choices[{i}]", choice) for i, choice in enumerate(spec.choices or ())]
    return [("low", spec.low), ("high", spec.high)]


def validate_space(
    space: SearchSpace,
    config: PipelineConfig,
    *,
    checks: Callable[[PipelineConfig], Sequence[str]] | None = None,
) -> None:
    """Check that every parameter is a config path of the pipeline and its values are valid.

    Each parameter's ``low`` and ``high`` (or every choice) is applied to ``config`` as an
    override, so the config's own checks judge them; keys under a free-form ``options``
    section (``model.options.width``) accept anything. Parameters of ``name``, ``search``,
    ``tracking`` and ``resources`` are refused: the driver reads them before any trial runs.

    Args:
        space: the search space.
        config: the pipeline it will be sampled for.
        checks: more checks of a whole config (a sweep's: an objective that needs
            ``emissions.enabled``), run on every probed config too; a message they give for a
            probe but not for ``config`` itself is the parameter's error.

    Raises:
        ConfigError: every bad key or value, naming the parameter.
    """
    errors: list[str] = []
    known = set(checks(config)) if checks else set()  # the pipeline's own, not a parameter's
    for spec in space.params:
        key = f"params.{spec.name}"
        section = spec.name.split(".")[0]
        if section in _FIXED_SECTIONS:
            errors.append(
                f"{key} must not be searched: {section} settings are fixed for the whole sweep "
                "(the driver reads them, no trial does)"
            )
            continue
        found: dict[str, list[str]] = {}  # message -> the probed fields that produced it
        probes = _probe_values(spec)
        for field, value in probes:
            try:
                probed = apply_overrides(config, {spec.name: value})
            except ConfigError as exc:
                messages = list(exc.errors)
            else:
                messages = [m for m in checks(probed) if m not in known] if checks else []
            for message in messages:
                found.setdefault(message, []).append(field)
        for message, fields in found.items():
            where = key if len(fields) == len(probes) else f"{key}.{fields[0]}"
            errors.append(f"{where}: {message}")
    if errors:
        raise space.error(errors)
