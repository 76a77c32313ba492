"""The command line's log lines: its own plainly, other libraries' only when they matter."""

from __future__ import annotations

import logging

from graft_hpo._log import _ConsoleFormatter
from graft_hpo._log import _own_lines


def _record(name: str, level: int, message: str = "m") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_the_default_console_keeps_graft_hpo_lines_and_others_problems() -> None:
    assert _own_lines(_record("graft_hpo.data._load", logging.INFO))
    assert not _own_lines(_record("mlflow.store.db.utils", logging.INFO))
    assert not _own_lines(_record("ray.tune", logging.INFO))
    assert _own_lines(_record("ray.tune", logging.WARNING))
    # matplotlib's "building the font cache" notice is a warning; its errors still show
    assert not _own_lines(_record("matplotlib.font_manager", logging.WARNING))
    assert _own_lines(_record("matplotlib.font_manager", logging.ERROR))


def test_information_is_plain_and_warnings_say_where_they_come_from() -> None:
    fmt = _ConsoleFormatter()
    assert fmt.format(_record("graft_hpo.sweep", logging.INFO, "data digits: 1000 train")) == (
        "data digits: 1000 train"
    )
    assert fmt.format(_record("mlflow.tracking", logging.WARNING, "slow store")) == (
        "warning: mlflow.tracking: slow store"
    )


def test_importing_mlflow_pytorch_leaves_the_root_logger_as_it_was() -> None:
    """mlflow.pytorch's import calls logging.basicConfig(level=ERROR): after load_model or
    retrain, a notebook's warnings vanished and its own basicConfig did nothing."""
    import subprocess
    import sys

    def root_after(block: str) -> str:
        code = f"import logging\nfrom graft_hpo._log import root_logging_kept\n{block}\n"
        code += "root = logging.getLogger()\nprint(root.level, len(root.handlers))\n"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert root_after("with root_logging_kept():\n    import mlflow.pytorch") == "30 0"
    assert root_after("import mlflow.pytorch") == "40 1"  # what the guard is for
