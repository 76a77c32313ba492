"""What a running sweep shows: one line per finished trial and, on a terminal, a live bar.

Ray's own console output (its experiment box, the TensorBoard hint, the notices its processes
print at start-up) stays off the console unless asked for (``graft-hpo -v``): the sweep's
lines say what happened, in graft-hpo's words.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

from graft_hpo._names import ATTR_MLFLOW_RUN
from graft_hpo.sweep._budget import Spending

__all__ = ["Printer", "SweepConsole", "is_number", "quiet_stderr"]

Printer = Callable[[str], None]


@contextlib.contextmanager
def quiet_stderr(*, enabled: bool = True) -> Iterator[None]:
    """Keep what this process and the processes it starts write to stderr (file descriptor 2)
    off the console; replay it if the block raises. Processes started inside keep the quiet
    stderr for their lifetime (Ray's own daemons log to files anyway)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class SweepConsole:
    """The sweep's progress: a line per finished trial, and a live bar when ``bar`` is set.

    The bar (tqdm, on stderr) shows trials done of the total, running and failed, the best
    value of the first objective so far, the energy and CO2 measured so far (the shared
    selection's included) and elapsed and estimated remaining time. Lines print above it.
    Redirected to a file, leave ``bar`` off: the lines alone are the log.
    """

    def __init__(
        self,
        objectives: list[tuple[str, str]],
        trials: int,
        printer: Printer,
        *,
        bar: bool = False,
        spent: Mapping[str, float] | None = None,
        default_strategy: str = "",
        earlier: Iterable[tuple[str, str, Mapping[str, Any]]] = (),
    ) -> None:
        self.objectives = objectives
        self.trials = trials
        self.printer = printer
        self.default_strategy = default_strategy
        self.done = 0
        self.failed = 0
        self.retries = 0  # restarts of trials whose worker was lost
        self.running: set[str] = set()
        self.spending = Spending(spent)  # per trial run: its latest cumulative figures
        self._earlier: set[str] = set()  # runs of earlier sessions counted as done
        self.best: float | None = None
        self._resumed(earlier)
        self._bar = self._open_bar() if bar else None

    def _open_bar(self) -> Any:
        from tqdm import tqdm

        return tqdm(
            total=self.trials,
            initial=self.done,  # a resumed sweep's earlier trials: not in the rate
            desc="sweep",
            unit="trial",
            file=sys.stderr,
            dynamic_ncols=True,
            # tqdm puts ", " before the postfix: "... [00:14<00:52], running 2, failed 0, ..."
            bar_format="{desc} {bar:16} {n_fmt}/{total_fmt} trials "
            "[{elapsed}<{remaining}]{postfix}",
        )

    # ---- what the driver tells it

    def started(self, trial_id: str) -> None:
        self.running.add(trial_id)
        self._refresh()

    def _resumed(self, runs: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None:
        """What earlier sessions of a resumed sweep did (``earlier``): each trial run's
        ``(run_id, status, metrics)``. Its ended runs count as done (its KILLED ones run
        again), every run's energy and CO2 count, and its best value stands."""
        for run_id, status, metrics in runs:
            self._record(run_id, metrics)
            if status in ("FINISHED", "FAILED"):
                self._earlier.add(run_id)
                self.done += 1
                self.failed += int(status == "FAILED")

    def reported(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """A trial's report (every validated epoch, and its last)."""
        self._record(str(result.get(ATTR_MLFLOW_RUN) or trial_id), result)
        self._refresh()

    def _record(self, key: str, figures: Mapping[str, Any]) -> None:
        self.spending.record(key, figures)
        metric, mode = self.objectives[0]
        if is_number(figures.get(metric)):
            value = float(figures[metric])
            better = max if mode == "max" else min
            self.best = value if self.best is None else better(self.best, value)

    def ended(self, status: str, trial: Any, note: str = "") -> None:
        """A trial ended (FINISHED, early-stopped, FAILED): one line."""
        if (trial.last_result or {}).get(ATTR_MLFLOW_RUN) in self._earlier:
            self._earlier.discard(trial.last_result[ATTR_MLFLOW_RUN])  # counted: it had ended
            self.done -= 1
            self.failed -= int(status == "FAILED")
        self.done += 1
        self.failed += int(status == "FAILED")
        self.running.discard(trial.trial_id)
        result = trial.last_result or {}
        objs = "  ".join(
            f"{m}={result[m]:.4g}" for m, _ in self.objectives if is_number(result.get(m))
        )
        objs = "  ".join(part for part in (objs, note) if part)
        count = f"[{self.done:>{len(str(self.trials))}}/{self.trials}]"  # columns stay put
        self._line(count, status, trial, objs)
        if self._bar is not None:
            self._bar.update(1)
        self._refresh()

    def retried(self, trial: Any, note: str) -> None:
        """A trial lost its worker and starts again from its last checkpoint: one line."""
        self.retries += 1
        self._line(" " * len(f"[{self.trials}/{self.trials}]"), "RETRIED", trial, note)

    def _line(self, count: str, status: str, trial: Any, text: str) -> None:
        strategy = trial.config.get("selection.strategy", self.default_strategy)
        self._say(f"{count} trial {trial.trial_id} {status:<13} {strategy:<6} {text}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ---- the bar

    def totals(self) -> dict[str, float]:
        """Energy and CO2 measured so far: every trial's latest report, plus the shared cost."""
        return self.spending.totals()

    def status(self) -> str:
        """The bar's text after the counts, e.g. ``running 2, failed 0, best val_acc 0.97``."""
        parts = [f"running {len(self.running)}", f"failed {self.failed}"]
        if self.retries:
            parts.append(f"retried {self.retries}")
        if self.best is not None:
            parts.append(f"best {self.objectives[0][0]} {self.best:.4g}")
        totals = self.totals()
        parts.append(f"{totals['co2_kg']:.3g} kg CO2, {totals['energy_kwh']:.3g} kWh")
        return ", ".join(parts)

    def _refresh(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(self.status())

    def _say(self, line: str) -> None:
        if self._bar is None:
            self.printer(line)
            return
        from tqdm import tqdm

        with tqdm.external_write_mode(file=sys.stderr):
            self.printer(line)
