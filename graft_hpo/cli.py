"""``graft-hpo``: a thin command-line face over the public functions.

Each verb parses its arguments, calls one public function and returns an exit code:
0 ok, 1 runtime failure, 2 bad input (one line naming the key, what was expected, what was given).
Heavy modules (torch, ray, mlflow) are imported inside the verbs, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from graft_hpo import __version__
from graft_hpo import _log
from graft_hpo import _text
from graft_hpo.exceptions import ConfigError
from graft_hpo.exceptions import GraftHPOError

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
PIPELINE_HELP = "a pipeline YAML (plug-ins 'module:attr' beside it) or a bundled name (mnist)"
VERBOSE_HELP = "also show Ray's and MLflow's own output and every log line, timestamped"


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments already; keep its message to one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _add_pipeline_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", help=PIPELINE_HELP)
    _add_set(parser)


def _add_set(parser: argparse.ArgumentParser, example: str = "train.epochs=3") -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a dotted config key, value parsed as YAML, e.g. {example} (repeatable)",
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    from graft_hpo.config import config_to_dict
    from graft_hpo.config import load_pipeline
    from graft_hpo.sweep import check_sweep
    from graft_hpo.trial import check_pipeline
    from graft_hpo.trial import check_plugins

    config = load_pipeline(args.pipeline, args.overrides)
    if config.search.space is not None:  # the search space too (no Ray), the plug-ins last
        check_sweep(config, overrides=args.overrides)
    else:
        check_pipeline(config)
        check_plugins(config)
    _emit(config_to_dict(config), as_json=args.json, text=_text.yaml_dump)
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from graft_hpo.config import load_pipeline
    from graft_hpo.trial import run_trial

    config = load_pipeline(args.pipeline, args.overrides)
    result = run_trial(config, tracking_uri=args.tracking_uri)
    _emit(result.to_dict(), as_json=args.json, text=_text.trial_text)
    return EXIT_OK if result.status == "FINISHED" else EXIT_FAILURE


def _cmd_sweep(args: argparse.Namespace) -> int:
    from graft_hpo.sweep import run_sweep

    overrides = [*args.overrides, *(["search.fail_fast=true"] if args.fail_fast else [])]
    result = run_sweep(
        args.pipeline,
        trials=args.trials,
        overrides=overrides,
        address=args.address,
        tracking_uri=args.tracking_uri,
        sweep_dir=args.sweep_dir,
        printer=_progress,
        progress=sys.stderr.isatty(),
        verbose=args.verbose,
    )
    return _sweep_exit(result.to_dict(), args)


def _sweep_exit(result: dict[str, Any], args: argparse.Namespace) -> int:
    """Print a sweep's result; one without a finished trial also an error line: exit 1."""
    _emit(result, as_json=args.json, text=_text.sweep_text)
    if result["trials"].get("FINISHED", 0) > 0:  # a failed select stage: the front stands
        return EXIT_FAILURE if "error" in (result.get("selected") or {}) else EXIT_OK
    message = f"sweep {result['sweep_id']} has no finished trial, so no front"
    if result["failed"]:
        message += f"; first error: {result['failed'][0]['error']}"
    elif result.get("stop_reason"):  # e.g. a budget the shared selection spent
        message += f"; stopped before any trial: {result['stop_reason']}"
    print(f"graft-hpo {args.command}: error: {message}", file=sys.stderr)
    return EXIT_FAILURE


def _cmd_resume(args: argparse.Namespace) -> int:
    from graft_hpo.sweep import resume_sweep

    result = resume_sweep(
        args.sweep,
        address=args.address,
        printer=_progress,
        progress=sys.stderr.isatty(),
        verbose=args.verbose,
    )
    return _sweep_exit(result.to_dict(), args)


def _cmd_pareto(args: argparse.Namespace) -> int:
    from graft_hpo.pareto import pareto_table
    from graft_hpo.tracking import pareto_front
    from graft_hpo.tracking import sweep_objectives

    where = {"experiment": args.experiment, "tracking_uri": args.tracking_uri}
    objectives, sweep_id = sweep_objectives(sweep_id=args.sweep_id, **where)
    if args.plot and len(objectives) < 2:  # before anything is printed
        shown = ", ".join(f"{m} ({mode})" for m, mode in objectives)
        raise ConfigError(f"--plot needs a sweep of two objectives; sweep {sweep_id} has {shown}")
    front = pareto_front(sweep_id=sweep_id, **where)
    if args.plot:  # the same sweep's trials
        from graft_hpo.pareto import plot_front
        from graft_hpo.tracking import sweep_runs

        runs = sweep_runs(sweep_id=sweep_id, **where)
        plot_front(runs, objectives[:2], args.plot, front=front)  # the table's axes and front
        print(f"plot of sweep {sweep_id} written to {args.plot}", file=sys.stderr)
    shown = " vs ".join(f"{m} {mode}" for m, mode in objectives)
    table = f"sweep {sweep_id}: Pareto front ({shown})\n{pareto_table(front, objectives)}"
    data = {"sweep_id": sweep_id, "objectives": objectives, "points": [p.to_dict() for p in front]}
    _emit(data, as_json=args.json, text=lambda _: table)
    return EXIT_OK


def _cmd_select(args: argparse.Namespace) -> int:
    from graft_hpo.tracking import select_run

    where = {"experiment": args.experiment, "sweep_id": args.sweep_id}
    point = select_run(args.policy, tracking_uri=args.tracking_uri, key="--policy", **where)
    text = functools.partial(_text.selected_text, tracking_uri=args.tracking_uri)
    _emit({"policy": args.policy, **point.to_dict()}, as_json=args.json, text=text)
    return EXIT_OK


def _cmd_retrain(args: argparse.Namespace) -> int:
    from graft_hpo.retraining import retrain

    result = retrain(
        args.run_id,
        tracking_uri=args.tracking_uri,
        epochs=args.epochs,
        overrides=args.overrides,
        register=args.register,
    )
    _emit(result.to_dict(), as_json=args.json, text=_text.retrain_text)
    return EXIT_OK if result.status == "FINISHED" and result.error is None else EXIT_FAILURE


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # stdout is kept for results (--json)


def _emit(data: Any, *, as_json: bool, text: Callable[[Any], str]) -> None:
    print(json.dumps(data, default=str) if as_json else text(data))
    if as_json:  # stdout holds the one object: what prints later goes to stderr
        _log.stdout_alone()


_COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "validate": (_cmd_validate, "check a pipeline (and its plug-ins); print the resolved config"),
    "train": (_cmd_train, "run one trial locally (no Ray) and log it to MLflow"),
    "sweep": (_cmd_sweep, "run an HPO sweep on Ray Tune + Optuna; print the Pareto front"),
    "resume": (_cmd_resume, "continue an interrupted sweep"),
    "pareto": (_cmd_pareto, "print the accuracy-vs-CO2 Pareto front of a sweep"),
    "select": (_cmd_select, "pick one run of a sweep's Pareto front by a policy"),
    "retrain": (_cmd_retrain, "train a run's configuration again, log and register the model"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graft-hpo", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"graft-hpo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in _COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        # also after the verb (`graft-hpo sweep mnist -v`); SUPPRESS keeps the main flag's value
        cmd.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )
        _add_command_args(cmd, name)
    return parser


def _add_command_args(cmd: argparse.ArgumentParser, name: str) -> None:
    """The arguments of command ``name`` beyond ``--json`` and ``-v``."""
    if name in ("validate", "train", "sweep"):
        _add_pipeline_args(cmd)
    if name in ("train", "sweep", "pareto", "select", "retrain"):
        cmd.add_argument(
            "--tracking-uri",
            help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else ./mlruns)",
        )
    if name == "sweep":
        cmd.add_argument("--trials", type=int, help="number of trials (default: search.trials)")
    if name in ("sweep", "resume"):
        cmd.add_argument(
            "--address",
            help="Ray cluster to join: HOST:PORT of its head (run the driver on a node), "
            "ray://HOST:10001 (needs ray[client]) or auto; default: "
            + ("the Ray the sweep ran in" if name == "resume" else "a local Ray"),
        )
    if name == "sweep":
        cmd.add_argument(
            "--fail-fast",
            action="store_true",
            help="after the first failed trial, start no new one; running trials finish "
            "(search.fail_fast)",
        )
        cmd.add_argument(
            "--sweep-dir",
            help="folder for Ray state and the Optuna study (default: ./mlruns/sweeps/SWEEP_ID)",
        )
    if name == "resume":
        cmd.add_argument("sweep", help="a sweep folder, or a pipeline (its latest sweep)")
    if name in ("pareto", "select"):
        cmd.add_argument("--experiment", help="MLflow experiment (default: any)")
        cmd.add_argument("--sweep-id", help="which sweep (default: the latest)")
    if name == "pareto":
        cmd.add_argument("--plot", metavar="FILE", help="also write a PNG plot of the front")
    if name == "select":
        cmd.add_argument(
            "--policy",
            default="knee",
            help="max:METRIC | min:METRIC | knee | budget:METRIC<=X | floor:METRIC>=Y "
            "(default: knee)",
        )
    if name == "retrain":
        cmd.add_argument("run_id", metavar="RUN_ID", help="the trial run to train again")
        cmd.add_argument("--epochs", type=int, help="epochs (default: the trial's)")
        _add_set(cmd, "selection.strategy=full")
        cmd.add_argument("--register", metavar="NAME", help="register the model as NAME")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graft-hpo`` console script."""
    args = build_parser().parse_args(argv)
    args.verbose = args.verbose or args.debug
    _log.configure_logging(verbose=args.verbose, debug=args.debug)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stderr is ours
    handler, _ = _COMMANDS[args.command]
    try:
        return handler(args)
    except ConfigError as err:
        if args.debug:
            raise
        print(f"graft-hpo {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (GraftHPOError, OSError, RuntimeError) as err:
        if args.debug:
            raise
        print(f"graft-hpo {args.command}: failed: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"graft-hpo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
