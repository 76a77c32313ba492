"""The command line's logging: graft-hpo's own lines by default, everything with ``-v``."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

__all__ = ["configure_logging", "root_logging_kept", "stdout_alone"]


def _own_lines(record: logging.LogRecord) -> bool:
    """The console's default: graft-hpo's own log lines, and other libraries' problems
    (not matplotlib's one-off notice that it builds its font cache)."""
    if record.name.startswith("graft_hpo"):
        return True
    threshold = logging.ERROR if record.name.startswith("matplotlib") else logging.WARNING
    return record.levelno >= threshold


class _ConsoleFormatter(logging.Formatter):
    """Plain lines for graft-hpo's information; the level and source for warnings."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno < logging.WARNING:
            return record.getMessage()
        return f"{record.levelname.lower()}: {record.name}: {record.getMessage()}"


def configure_logging(*, verbose: bool, debug: bool) -> None:
    """Log to stderr: by default graft-hpo's information as plain lines and every library's
    warnings; with ``verbose``, every record, timestamped; with ``debug``, debug records too."""
    handler = logging.StreamHandler(sys.stderr)
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_ConsoleFormatter())
        handler.addFilter(_own_lines)
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # its own handler, not ours
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler])


def stdout_alone() -> None:
    """After ``--json``'s object: what is printed from here on (by anyone, at exit too) goes to
    stderr, so stdout holds the object alone. Not when a caller redirected ``sys.stdout``."""
    real = sys.__stdout__
    if real is not None and sys.stdout is real:
        real.flush()
        os.dup2(sys.stderr.fileno(), real.fileno())


@contextlib.contextmanager
def root_logging_kept() -> Iterator[None]:
    """The root logger's level and handlers as they were before the block: importing
    ``mlflow.pytorch`` calls ``logging.basicConfig(level=ERROR)``, which, in a process without
    handlers (a notebook, a script), hid every later warning and made the user's own
    ``basicConfig`` a no-op."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
