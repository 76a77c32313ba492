"""Command-line options several benchmarks take, each spelt (name, type, help) in one place."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path

from benchmarks._machine import ROOT

SPACES = ROOT / "benchmarks" / "spaces"  # the benchmarks' own search spaces


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1 (a count of epochs, trials, threads, jobs)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {value}")
    return value


def existing_file(text: str) -> Path:
    """An argparse ``type``: a file that exists (a saved report to render again)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return path


def check_pipelines(
    parser: argparse.ArgumentParser,
    runs: Iterable[tuple[str, Sequence[str]]],
    *,
    spaces: bool = False,
) -> None:
    """Every run's pipeline (and, with ``spaces``, its search space) loaded before the first
    runs: a bad ``--fraction`` or ``--set`` is one line and exit 2 (``parser.error``), not a
    traceback minutes later."""
    from graft_hpo.config import load_pipeline
    from graft_hpo.exceptions import ConfigError
    from graft_hpo.space import load_space

    for pipeline, overrides in runs:
        try:
            config = load_pipeline(pipeline, overrides=list(overrides))
            if spaces:
                load_space(config.search.space)
        except ConfigError as err:
            parser.error(str(err))


def add_json_line(parser: argparse.ArgumentParser) -> None:
    """``--json``: the report's JSON object as the last stdout line."""
    parser.add_argument("--json", action="store_true", help="last stdout line: one JSON object")


def add_plot(parser: argparse.ArgumentParser) -> None:
    """``--plot FILE``: the benchmark's figure as a PNG."""
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG here")


def add_overrides(parser: argparse.ArgumentParser, scope: str) -> None:
    """``--set KEY=VALUE`` (repeatable): a dotted override for ``scope`` (e.g. "every run")."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"extra dotted override for {scope} (repeatable)",
    )


def add_epochs(parser: argparse.ArgumentParser) -> None:
    """``--epochs N``: ``train.epochs`` of every run; default the pipeline's."""
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="default: the pipeline's"
    )


def add_sweep_options(parser: argparse.ArgumentParser, *, out: str) -> None:
    """The options of a benchmark that runs sweeps side by side and retrains their best:
    ``--pipeline``, ``--epochs``, ``--max-concurrent``, ``--space``, ``--set``, ``--threads``,
    ``--out`` (default ``benchmarks/_out/<out>``), ``--quick``, ``--json`` and ``--plot``."""
    parser.add_argument("--pipeline", default="mnist", help="bundled name or YAML path")
    add_epochs(parser)
    parser.add_argument("--max-concurrent", type=int, default=2, help="trials at once")
    parser.add_argument("--space", type=Path, default=SPACES / "mnist_model.yaml")
    add_overrides(parser, "every sweep and retraining")
    parser.add_argument(
        "--threads", type=positive_int, default=2, help="torch threads of the retraining"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_out" / out)
    parser.add_argument("--quick", action="store_true", help="3 trials of 3 epochs per sweep")
    add_json_line(parser)
    add_plot(parser)
