"""``graft-hpo``: a thin command-line face over the public functions.

Each verb parses its arguments, calls one public function and returns an exit code:
0 ok, 1 runtime failure, 2 bad input (one line naming the key, what was expected, what was given).
Heavy modules (torch, ray, mlflow) are imported inside the verbs, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from graft_hpo import __version__
from graft_hpo.exceptions import ConfigError
from graft_hpo.exceptions import GraftHPOError

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments already; keep its message to one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _add_pipeline_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", help="path to a pipeline YAML, or a bundled name (mnist)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a dotted config key, value parsed as YAML (repeatable)",
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    from graft_hpo.config import config_to_dict
    from graft_hpo.config import load_pipeline
    from graft_hpo.trial import check_pipeline

    config = load_pipeline(args.pipeline, args.overrides)
    check_pipeline(config)
    _emit(config_to_dict(config), as_json=args.json, text=_yaml_dump)
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from graft_hpo.config import load_pipeline
    from graft_hpo.trial import run_trial

    config = load_pipeline(args.pipeline, args.overrides)
    result = run_trial(config, tracking_uri=args.tracking_uri)
    _emit(result.to_dict(), as_json=args.json, text=_trial_text)
    return EXIT_OK if result.status == "FINISHED" else EXIT_FAILURE


def _yaml_dump(data: Any) -> str:
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False))


def _trial_text(result: dict[str, Any]) -> str:
    metrics = result["metrics"]
    keys = (
        "val_acc",
        "val_loss",
        "co2_kg",
        "energy_kwh",
        "duration_s",
        "selection_s",
        "fraction_effective",
        "epochs_completed",
    )
    lines = [f"run {result['run_id']}: {result['status']}"]
    if result.get("error"):
        lines.append(f"  error: {result['error']}")
    lines += [f"  {k:<20} {metrics[k]:.6g}" for k in keys if k in metrics]
    return "\n".join(lines)


def _emit(data: Any, *, as_json: bool, text: Callable[[Any], str]) -> None:
    print(json.dumps(data, default=str) if as_json else text(data))


_COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "validate": (_cmd_validate, "check a pipeline and print the resolved config"),
    "train": (_cmd_train, "run one trial locally (no Ray) and log it to MLflow"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graft-hpo", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"graft-hpo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in _COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        if name in ("validate", "train"):
            _add_pipeline_args(cmd)
        if name == "train":
            cmd.add_argument("--tracking-uri", help="MLflow tracking URI (default: ./mlruns)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graft-hpo`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
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
