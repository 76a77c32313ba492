"""The sweep folder: one object that knows its files by name (Ray Tune's ``experiment/``).

Besides Ray's state (``ray/``) and the Optuna study (``optuna.db``), it holds, each written
atomically so that a killed driver never leaves half of one:

- ``sweep.json``: the plan (see :mod:`graft_hpo.sweep._plan`);
- ``sessions.json``: when each session of the sweep ran (``run_sweep``, each ``resume_sweep``),
  so a time budget counts running time only, not an interrupted sweep's pause;
- ``stop.json``: why the sweep stopped before its trial count (a budget, fail-fast);
- ``ranking.pt`` and ``ranking.json``: the shared GRAFT ranking (``selection.scope: sweep``)
  and what it cost (energy, CO2, seconds; the plan carries it too);
- ``rungs.jsonl``: what the multi-objective ASHA recorded at each rung, a line per record (a
  resumed sweep keeps it: Tune checkpoints its searcher, not its scheduler); older sweeps kept
  the whole table in ``rungs.json``, still read;
- ``model.json``: the model the final stage retrained, and for which trial run (a resumed
  sweep that chooses the same run does not train it again).

No other module names these files or reads them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from typing import TypeVar

from graft_hpo._names import TAG_SOURCE_RUN
from graft_hpo.exceptions import ConfigError
from graft_hpo.selection import Ranking

__all__ = ["SweepFolder", "write_stop"]

T = TypeVar("T")


class SweepFolder:
    """A sweep's folder and its files.

    Args:
        path: the folder (``./mlruns/sweeps/<sweep_id>`` by default, see :meth:`default`).
    """

    PLAN = "sweep.json"
    SESSIONS = "sessions.json"
    STOP = "stop.json"
    RANKING = "ranking.pt"
    RANKING_COST = "ranking.json"
    RUNGS_LOG = "rungs.jsonl"
    OLD_RUNGS = "rungs.json"  # written by sweeps before rungs.jsonl; still read
    OPTUNA_DB = "optuna.db"
    MODEL = "model.json"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @staticmethod
    def root() -> Path:
        """Where sweeps go unless told: ``./mlruns/sweeps``."""
        return Path.cwd() / "mlruns" / "sweeps"

    @classmethod
    def default(cls, sweep_id: str) -> SweepFolder:
        return cls(cls.root() / sweep_id)

    @classmethod
    def find(cls, sweep_dir_or_pipeline: str | os.PathLike[str]) -> SweepFolder:
        """A sweep folder, or the most recent sweep folder of a pipeline (a bundled name or a
        path) under :meth:`root`."""
        given = cls(sweep_dir_or_pipeline)
        if given.holds_plan():
            return cls(given.path.resolve())
        if given.path.is_dir():
            raise given._not_a_sweep()
        from graft_hpo.config import is_bundled_name
        from graft_hpo.config import load_pipeline

        if not given.path.exists() and not is_bundled_name(sweep_dir_or_pipeline):
            raise ConfigError(  # a path, not a pipeline's name: say what it could have been
                f"sweep {str(given.path)!r} does not exist: expected a sweep folder "
                f"(holding {cls.PLAN}) or a pipeline's name or YAML file"
            )

        name = load_pipeline(sweep_dir_or_pipeline).name
        candidates = []
        for plan_file in cls.root().glob(f"*/{cls.PLAN}"):
            data = _read_json(plan_file)
            if isinstance(data, dict) and data.get("config", {}).get("name") == name:
                candidates.append((plan_file.stat().st_mtime, plan_file.parent))
        if not candidates:
            raise ConfigError(
                f"no sweep of pipeline {name!r} under {cls.root()}; "
                "pass the sweep folder printed when the sweep started"
            )
        return cls(max(candidates)[1])

    # ---- the plan

    def holds_plan(self) -> bool:
        """Whether a sweep's plan is here (a sweep started in this folder)."""
        return (self.path / self.PLAN).is_file()

    def write_plan(self, data: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _write_json(self.path / self.PLAN, data, indent=2)

    def read_plan(self, parse: Callable[[dict[str, Any]], T]) -> T:
        """The plan, made by ``parse`` from the JSON of ``sweep.json``.

        Raises:
            ConfigError: the folder holds no plan, or not one ``parse`` can read.
        """
        if not self.holds_plan():
            raise self._not_a_sweep()
        try:
            return parse(json.loads((self.path / self.PLAN).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(
                f"sweep {str(self.path)!r}: {self.PLAN} is not a readable graft-hpo sweep "
                f"plan ({type(err).__name__}: {err})"
            ) from err

    def _not_a_sweep(self) -> ConfigError:
        return ConfigError(f"sweep {str(self.path)!r} holds no {self.PLAN}: not a sweep folder")

    @property
    def optuna_db(self) -> Path:
        """The Optuna study's sqlite file, unless ``search.storage`` names another store."""
        return self.path / self.OPTUNA_DB

    # ---- sessions: the time budget's clock

    def session_started(self) -> None:
        """Record that a session of the sweep starts now (``run_sweep`` or ``resume_sweep``).

        A session left open had its driver killed: it ended, for the time budget, when the
        sweep folder last changed (Tune's state, the study, checkpoints), not now, so the pause
        before a resume is not charged as running time.
        """
        sessions = self._sessions()
        if sessions and sessions[-1][1] is None and sessions[-1][0] is not None:
            sessions[-1][1] = max(sessions[-1][0], self._last_change())
        sessions.append([time.time(), None])
        _write_json(self.path / self.SESSIONS, sessions)

    def session_ended(self) -> None:
        sessions = self._sessions()
        if sessions and sessions[-1][1] is None:
            sessions[-1][1] = time.time()
            _write_json(self.path / self.SESSIONS, sessions)

    def wall_s(self) -> float:
        """Seconds the sweep has been running, over all its sessions (the open one up to now)."""
        now = time.time()
        spans = [(start, now if end is None else end) for start, end in self._sessions()]
        return float(sum(end - start for start, end in spans if start is not None))

    def _last_change(self) -> float:
        """The newest modification time of a file in the sweep folder (0.0 if none)."""
        times = [p.stat().st_mtime for p in self.path.rglob("*") if p.is_file()]
        return max(times, default=0.0)

    def _sessions(self) -> list[list[float | None]]:
        data = _read_json(self.path / self.SESSIONS)
        return [list(item) for item in data] if isinstance(data, list) else []

    # ---- why the sweep ended early

    def write_stop(self, reason: str) -> None:
        """Record why the sweep stopped before its trial count (a budget, fail-fast); the
        first reason recorded stays."""
        path = self.path / self.STOP
        if not path.exists():
            _write_json(path, {"reason": reason})

    def read_stop(self) -> str | None:
        """Why the sweep stopped (one line), or None if it did not."""
        data = _read_json(self.path / self.STOP)
        return str(data["reason"]) if isinstance(data, dict) and "reason" in data else None

    # ---- the shared ranking and its cost

    def write_ranking(self, ranking: Ranking, cost: dict[str, float]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        ranking.save(self.path / self.RANKING)
        _write_json(self.path / self.RANKING_COST, cost, indent=2)

    def read_ranking(self) -> Ranking | None:
        """The sweep's stored ranking, or None when it has none."""
        path = self.path / self.RANKING
        return Ranking.load(path) if path.is_file() else None

    def ranking_cost(self) -> dict[str, float]:
        """What the sweep's shared selection cost (empty when the sweep has none). The plan
        carries it; this reads it for a plan written before it did."""
        data = _read_json(self.path / self.RANKING_COST)
        if not isinstance(data, dict):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}

    # ---- the final stage's model

    def write_model(self, model: dict[str, Any]) -> None:
        """The retrained model (``RetrainResult.to_dict()``, with its ``source_run_id``)."""
        _write_json(self.path / self.MODEL, model, indent=2)

    def read_model(self, source_run_id: str) -> dict[str, Any] | None:
        """The model retrained earlier from trial run ``source_run_id``, or None."""
        data = _read_json(self.path / self.MODEL)
        if isinstance(data, dict) and data.get(TAG_SOURCE_RUN) == source_run_id:
            return data
        return None

    # ---- the multi-objective scheduler's rungs

    def append_rung(self, milestone: int, trial_id: str, values: list[float]) -> None:
        """Record a trial's objective values at a rung (epochs): one line appended to
        ``rungs.jsonl``, so a record costs the same however many the sweep holds. A driver
        killed mid-write leaves at most a partial line, which :meth:`read_rungs` skips (the
        next record starts a line of its own)."""
        line = json.dumps([milestone, trial_id, values]).encode() + b"\n"
        with open(self.path / self.RUNGS_LOG, "a+b") as log:
            if log.seek(0, os.SEEK_END) > 0:
                log.seek(-1, os.SEEK_END)
                if log.read(1) != b"\n":  # a line cut short: end it
                    line = b"\n" + line
            log.write(line)

    def read_rungs(self) -> dict[int, dict[str, list[float]]]:
        """Per rung, each trial's recorded objective values, in the order recorded; empty
        before the first record. Reads ``rungs.json`` too: the whole-table file sweeps before
        ``rungs.jsonl`` rewrote after every record (a resumed old sweep keeps its rungs)."""
        saved = _read_json(self.path / self.OLD_RUNGS) or {}
        rungs = {int(m): dict(r) for m, r in saved.items()}
        try:
            lines = (self.path / self.RUNGS_LOG).read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                milestone, trial_id, values = json.loads(line)
            except ValueError:  # a line cut short by a killed driver
                continue
            rungs.setdefault(int(milestone), {})[str(trial_id)] = [float(v) for v in values]
        return rungs


def _write_json(path: Path, data: Any, *, indent: int | None = None) -> None:
    """Write ``data`` as JSON atomically: a killed driver never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent, default=str))
    tmp.replace(path)


def _read_json(path: Path) -> Any:
    """The file's JSON, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_stop(sweep_dir: str, reason: str) -> None:
    """:meth:`SweepFolder.write_stop` under its former name: the Tune state (``tuner.pkl``) of
    a sweep saved before :class:`SweepFolder` holds a driver callback that calls it, so
    resuming such a sweep needs it."""
    SweepFolder(sweep_dir).write_stop(reason)
