"""The sweep folder's own files (besides Ray's state and the Optuna study).

Every file is written atomically, so a killed driver never leaves half of one:

- ``sweep.json``: the plan (see :mod:`graft_hpo.sweep._plan`);
- ``sessions.json``: when each session of the sweep ran (``run_sweep``, each ``resume_sweep``),
  so a time budget counts running time only, not an interrupted sweep's pause;
- ``stop.json``: why the sweep stopped before its trial count (a budget, fail-fast);
- ``ranking.pt`` and ``ranking.json``: the shared GRAFT ranking (``selection.scope: sweep``)
  and what it cost (energy, CO2, seconds);
- ``rungs.jsonl``: what the multi-objective ASHA recorded at each rung, a line per record (a
  resumed sweep keeps it: Tune checkpoints its searcher, not its scheduler); older sweeps kept
  the whole table in ``rungs.json``, still read.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from graft_hpo.selection import Ranking

__all__ = [
    "append_rung",
    "clear_stop",
    "default_sweeps_dir",
    "ranking_cost",
    "read_ranking",
    "read_rungs",
    "read_stop",
    "session_ended",
    "session_started",
    "sweep_wall_s",
    "write_json",
    "write_ranking",
    "write_stop",
]

STOP_FILE = "stop.json"
SESSIONS_FILE = "sessions.json"
RANKING_FILE = "ranking.pt"
RANKING_COST_FILE = "ranking.json"
RUNGS_FILE = "rungs.json"  # written by sweeps before rungs.jsonl; still read
RUNGS_LOG = "rungs.jsonl"


def default_sweeps_dir() -> Path:
    return Path.cwd() / "mlruns" / "sweeps"


def write_json(path: Path, data: Any, *, indent: int | None = None) -> None:
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


# ---- sessions: the time budget's clock


def session_started(sweep_dir: str) -> None:
    """Record that a session of the sweep starts now (``run_sweep`` or ``resume_sweep``)."""
    path = Path(sweep_dir) / SESSIONS_FILE
    sessions = _sessions(path)
    sessions.append([time.time(), None])
    write_json(path, sessions)


def session_ended(sweep_dir: str) -> None:
    path = Path(sweep_dir) / SESSIONS_FILE
    sessions = _sessions(path)
    if sessions and sessions[-1][1] is None:
        sessions[-1][1] = time.time()
        write_json(path, sessions)


def sweep_wall_s(sweep_dir: str) -> float:
    """Seconds the sweep has been running, over all its sessions (the open one up to now)."""
    now = time.time()
    total = 0.0
    for start, end in _sessions(Path(sweep_dir) / SESSIONS_FILE):
        if start is not None:
            total += (now if end is None else end) - start
    return total


def _sessions(path: Path) -> list[list[float | None]]:
    data = _read_json(path)
    return [list(item) for item in data] if isinstance(data, list) else []


# ---- stop.json: why the sweep ended early


def write_stop(sweep_dir: str, reason: str) -> None:
    """Record why the sweep stopped before its trial count (a budget, fail-fast); first wins."""
    path = Path(sweep_dir) / STOP_FILE
    if not path.exists():
        write_json(path, {"reason": reason})


def clear_stop(sweep_dir: str) -> None:
    """A resumed sweep decides afresh (a budget still spent stops it again at once)."""
    (Path(sweep_dir) / STOP_FILE).unlink(missing_ok=True)


def read_stop(sweep_dir: str) -> str | None:
    """Why the gate stopped the sweep (one line), or None if it did not."""
    data = _read_json(Path(sweep_dir) / STOP_FILE)
    return str(data["reason"]) if isinstance(data, dict) and "reason" in data else None


# ---- the shared ranking and its cost


def write_ranking(sweep_dir: str, ranking: Ranking, cost: dict[str, float]) -> None:
    folder = Path(sweep_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ranking.save(folder / RANKING_FILE)
    write_json(folder / RANKING_COST_FILE, cost, indent=2)


def read_ranking(sweep_dir: str) -> Ranking | None:
    """The sweep's stored ranking, or None when it has none."""
    path = Path(sweep_dir) / RANKING_FILE
    return Ranking.load(path) if path.is_file() else None


def ranking_cost(sweep_dir: str) -> dict[str, float]:
    """What the sweep's shared selection cost (empty when the sweep has none)."""
    data = _read_json(Path(sweep_dir) / RANKING_COST_FILE)
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


# ---- the multi-objective scheduler's rungs


def append_rung(sweep_dir: str, milestone: int, trial_id: str, values: list[float]) -> None:
    """Record a trial's objective values at a rung (epochs): one line appended to
    ``rungs.jsonl``, so a record costs the same however many the sweep holds. A driver killed
    mid-write leaves at most a partial line, which :func:`read_rungs` skips (the next record
    starts a line of its own)."""
    line = json.dumps([milestone, trial_id, values]).encode() + b"\n"
    with open(Path(sweep_dir) / RUNGS_LOG, "a+b") as log:
        if log.seek(0, os.SEEK_END) > 0:
            log.seek(-1, os.SEEK_END)
            if log.read(1) != b"\n":  # a line cut short: end it
                line = b"\n" + line
        log.write(line)


def read_rungs(sweep_dir: str) -> dict[int, dict[str, list[float]]]:
    """Per rung, each trial's recorded objective values, in the order recorded; empty before
    the first record. Reads ``rungs.json`` too: the whole-table file sweeps before
    ``rungs.jsonl`` rewrote after every record (a resumed old sweep keeps its rungs)."""
    saved = _read_json(Path(sweep_dir) / RUNGS_FILE) or {}
    rungs = {int(m): dict(r) for m, r in saved.items()}
    try:
        lines = (Path(sweep_dir) / RUNGS_LOG).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            milestone, trial_id, values = json.loads(line)
        except ValueError:  # a line cut short by a killed driver
            continue
        rungs.setdefault(int(milestone), {})[str(trial_id)] = [float(v) for v in values]
    return rungs
