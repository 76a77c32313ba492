"""Trial checkpoints: what a trial writes through Ray's checkpoint API, and what its retry (or
a resumed sweep) reads back. docs/reliability.md says what survives what.

A checkpoint is one file, ``trial.pt``, in a folder Ray persists into the sweep's storage
(:func:`ray_storage`: ``<sweep>/ray/<trial>/checkpoint_NNNNNN`` by default): the training loop's
state (model, optimizer, sampler, RNGs, progress: :mod:`graft_hpo.training._checkpoint`), the
trial's MLflow run, and the energy, CO2 and time it has spent so far. It is written under a
temporary name and renamed, read with ``torch.load(weights_only=True)`` (tensors and plain data
only, no code), and only from inside the sweep's own storage. A checkpoint that is missing,
corrupt, of another format or of another trial restarts the trial from its first epoch with a
warning; it never fails a sweep.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from graft_hpo._names import CHECKPOINT_S
from graft_hpo._names import DURATION_S
from graft_hpo.training import LOOP_FORMAT

__all__ = [
    "AUTO_SHARE",
    "CHECKPOINT_FILE",
    "Checkpoints",
    "ray_storage",
    "read_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "trial.pt"
# metric: a trial's seconds spent writing checkpoints and reporting them (an upper bound of
# what checkpointing costs it: the report would be sent anyway)
AUTO_SHARE = 0.02  # train.checkpoint_every: null: checkpoints take at most this share of a trial
# ... and what the first one is assumed to take (measured here: 15-50 ms on the CPU, a 1-2 MB
# file): the first comes after 2.5 s of training, none in a shorter trial
FIRST_GUESS_S = 0.05
_FORMAT = 1  # of the file's outer layout (the loop's state has its own)


@dataclass
class Checkpoints:
    """When one trial checkpoints, and what.

    ``every=N``: every N epochs, and at every rung of the scheduler. ``every=None`` (the
    default): once the time since the last checkpoint (or since the trial started) is at least
    ``1 / AUTO_SHARE`` times what the last one took (``FIRST_GUESS_S`` before the first), so
    that checkpoints cost at most ``AUTO_SHARE`` of the trial's time; a checkpoint's time here
    includes Ray's copy and its report, an upper bound. Not at every rung: on the mnist recipe
    most trials stop at the first rung, and a checkpoint there only costs
    (benchmarks/results/checkpoint.md). Never after the last epoch: the trial ends at once.

    Args:
        every: ``train.checkpoint_every`` (0: never; None: by their cost).
        rungs: epoch counts a scheduler compares trials at.
        epochs: the trial's ``train.epochs``.
        owner: ``sweep_id`` and ``trial_id``, written into the file and checked on reading.
        spent: what earlier attempts measured (``duration_s`` among it): carried on.
    """

    every: int | None
    rungs: set[int]
    epochs: int
    owner: dict[str, str]
    spent: Mapping[str, float] = field(default_factory=dict)
    run_id: str | None = None
    started: float = field(default_factory=time.perf_counter)  # this attempt's start
    spent_s: float = 0.0  # seconds spent checkpointing, earlier attempts included
    off: bool = False  # set when one could not be written: the trial goes on without
    last_cost_s: float = FIRST_GUESS_S  # what the last checkpoint took
    last_at: float = field(default_factory=time.perf_counter)  # when it ended (or the start)

    def __post_init__(self) -> None:
        self.spent_s = self.spent.get(CHECKPOINT_S, 0.0)

    def due(self, done: int) -> bool:
        """Whether to checkpoint now, after ``done`` epochs."""
        if self.off or self.every == 0 or done >= self.epochs:
            return False
        if self.every is None:
            return time.perf_counter() - self.last_at >= self.last_cost_s / AUTO_SHARE
        return done % self.every == 0 or done in self.rungs

    @contextlib.contextmanager
    def written(self, snapshot: Mapping[str, Any], metrics: Mapping[str, float]) -> Iterator[str]:
        """A folder holding the checkpoint after the epoch of ``metrics`` (whose emissions
        figures are the trial's totals so far); it is deleted when the block ends, once Ray has
        persisted it (``tune.report`` copies it into storage before returning). The block's
        time, the report in it included, is the checkpoint's cost."""
        start = time.perf_counter()
        try:
            with self._folder(snapshot, metrics) as folder:
                yield folder
        finally:
            self.last_at = time.perf_counter()
            self.last_cost_s = self.last_at - start
            self.spent_s += self.last_cost_s

    @contextlib.contextmanager
    def _folder(self, snapshot: Mapping[str, Any], metrics: Mapping[str, float]) -> Iterator[str]:
        import torch

        from graft_hpo.sweep._search import EMISSIONS_METRICS

        spent = {k: float(metrics[k]) for k in EMISSIONS_METRICS if k in metrics}
        elapsed = time.perf_counter() - self.started
        spent[DURATION_S] = self.spent.get(DURATION_S, 0.0) + elapsed
        spent[CHECKPOINT_S] = self.spent_s
        payload = {
            "format": _FORMAT,
            **self.owner,
            "run_id": self.run_id,
            "loop": snapshot,
            "spent": spent,
            "wall_time": time.time(),  # to date the epochs logged after it (a lost attempt's)
        }
        with tempfile.TemporaryDirectory(prefix="graft-hpo-checkpoint-") as folder:
            part = Path(folder) / f"{CHECKPOINT_FILE}.part"
            torch.save(payload, part)
            os.replace(part, Path(folder) / CHECKPOINT_FILE)  # never half a file under the name
            yield folder


def ray_storage(sweep_dir: str, sweep_id: str, checkpoint_storage: str | None) -> str:
    """The folder (or URI) of the sweep's Ray experiment: its state and trial checkpoints.

    ``<sweep_dir>/ray`` by default; ``<search.checkpoint_storage>/<sweep_id>`` when set (shared
    or cloud storage every node reaches).
    """
    if checkpoint_storage is None:
        return str(Path(sweep_dir) / "ray")
    return f"{checkpoint_storage.rstrip('/')}/{sweep_id}"


def read_checkpoint(checkpoint: Any, *, storage: str, owner: Mapping[str, str]) -> Any:
    """The payload of Ray's ``checkpoint`` for the trial ``owner`` names, or None.

    None, with a warning, for a checkpoint outside the sweep's ``storage`` (:func:`ray_storage`,
    on a local file system), one that cannot be read, or one of another format, sweep or
    trial: the trial then trains from its first epoch.
    """
    if checkpoint is None:
        return None
    where = str(getattr(checkpoint, "path", checkpoint))
    try:
        _check_inside(checkpoint, storage)
        with checkpoint.as_directory() as folder:
            payload = _load(Path(folder) / CHECKPOINT_FILE)
        for key, value in {"format": _FORMAT, **owner}.items():
            if not isinstance(payload, dict) or payload.get(key) != value:
                found = payload.get(key) if isinstance(payload, dict) else type(payload).__name__
                raise ValueError(f"{key} is {found!r}, expected {value!r}")
        loop = payload.get("loop")
        if not isinstance(loop, dict) or loop.get("format") != LOOP_FORMAT:
            raise ValueError(f"its training-loop state is not of format {LOOP_FORMAT}")
    except Exception as err:  # anything wrong with it: start over, never fail the sweep
        logger.warning(
            "trial %s: checkpoint %s not used (%s: %s); training from the first epoch",
            owner.get("trial_id"),
            where,
            type(err).__name__,
            err,
        )
        return None
    return payload


def _check_inside(checkpoint: Any, storage: str) -> None:
    filesystem = getattr(checkpoint, "filesystem", None)
    if filesystem is not None and getattr(filesystem, "type_name", "local") != "local":
        return  # cloud storage: Ray put it under the sweep's storage path itself
    path = Path(checkpoint.path).resolve()
    if not path.is_relative_to(Path(storage).resolve()):
        raise ValueError(f"it is outside the sweep's storage {storage}")


def _load(path: Path) -> Any:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
