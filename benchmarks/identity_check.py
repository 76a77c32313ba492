"""Do selections and trainings stay bit-identical across a change? One seeded script, both sides.

A refactoring must not move a single number. This script trains the bundled ``digits`` pipeline
for 3 epochs at budget 0.2 (codecarbon off, a temporary MLflow store) with each strategy
(``graft``, ``random``, ``infobatch``, ``full``, and ``graft`` over a sweep's shared ranking),
retrains two of those runs for 4 epochs, and ranks once with the sweep's proxy; it prints each
run's metrics with ``repr`` and a SHA-1 of every selection's indices and weights. With
``--before REV`` it runs the same in a fresh process on the package as it was at ``REV`` (``git
archive``) and on this tree, and says whether the two outputs are byte-identical (exit 0) or
shows their difference (exit 1).

    .venv/bin/python benchmarks/identity_check.py --before HEAD~3
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._machine import check_revision  # noqa: E402
from benchmarks._machine import extract_package  # noqa: E402
from benchmarks._machine import run_importing  # noqa: E402

SHOWN = ("val_acc", "val_loss", "train_loss", "fraction_effective", "epochs_completed")
BASE = ["train.epochs=3", "selection.fraction=0.2", "emissions.enabled=false", "train.seed=0"]
ARMS = {
    "graft": ["selection.strategy=graft"],
    "random": ["selection.strategy=random"],
    "infobatch": ["selection.strategy=infobatch"],
    "full": ["selection.strategy=full"],
    "graft-sweep": ["selection.strategy=graft", "selection.scope=sweep"],
}


def fingerprint() -> list[str]:
    """The lines that must not change: every arm's metrics and selections, two retrainings and
    a proxy ranking."""
    from graft_hpo import load_pipeline
    from graft_hpo.proxy import proxy_ranking
    from graft_hpo.retraining import retrain
    from graft_hpo.training import TrainHooks
    from graft_hpo.trial import run_trial

    class Selections(TrainHooks):
        def __init__(self) -> None:
            self.seen: list[tuple[int, int, str]] = []

        def on_selection_end(self, state: Any, selection: Any) -> None:
            weights = None if selection.weights is None else selection.weights.tolist()
            digest = hashlib.sha1(repr((selection.indices.tolist(), weights)).encode())
            self.seen.append((state.epoch, len(selection.indices), digest.hexdigest()))

    def shown(metrics: dict[str, float]) -> dict[str, str]:
        return {k: repr(metrics[k]) for k in SHOWN if k in metrics}

    lines, runs = [], {}
    uri = f"sqlite:///{tempfile.mkdtemp(prefix='identity-')}/mlflow.db"
    for arm, extra in ARMS.items():
        hooks = Selections()
        result = run_trial(load_pipeline("digits", overrides=[*BASE, *extra]), tracking_uri=uri,
                           hooks=[hooks])  # fmt: skip
        runs[arm] = result.run_id
        lines += [f"{arm} {result.status} {result.error}", f"  metrics {shown(result.metrics)}",
                  f"  selections {hooks.seen}"]  # fmt: skip
    for arm in ("graft", "graft-sweep"):
        again = retrain(runs[arm], tracking_uri=uri, epochs=4, register=None)
        lines.append(f"retrain {arm} {again.status} {again.error} {shown(again.metrics)}")
    config = load_pipeline("digits", overrides=[*BASE, *ARMS["graft-sweep"]])
    ranking = proxy_ranking(config).subset(0.25).tolist()
    lines.append(f"proxy ranking {hashlib.sha1(repr(ranking).encode()).hexdigest()}")
    return lines


def _run_in(code: Path) -> list[str]:
    """The fingerprint, in a fresh process importing ``graft_hpo`` from ``code``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--print"]
    return run_importing(code, command, capture=True).splitlines()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="compare with the package at this git revision")
    parser.add_argument("--print", action="store_true", help="print this tree's fingerprint")
    args = parser.parse_args(argv)
    check_revision(parser, args.before)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if args.print or not args.before:
        print("\n".join(fingerprint()))
        return 0
    with tempfile.TemporaryDirectory(prefix="identity-") as tmp:
        before = _run_in(extract_package(args.before, Path(tmp) / "before"))
    after = _run_in(ROOT)
    if before == after:
        print(f"byte-identical to {args.before}: {len(after)} lines ({', '.join(ARMS)}, "
              "two retrainings, a proxy ranking)")  # fmt: skip
        return 0
    print("\n".join(difflib.unified_diff(before, after, args.before, "this tree", lineterm="")))
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
