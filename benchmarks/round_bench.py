"""What one GRAFT selection round costs, in training epochs, and what a cheaper one loses.

Run from the repository root (about 4 minutes on 2 CPUs):

    .venv/bin/python benchmarks/round_bench.py --json > benchmarks/results/round.md

On the bundled mnist pipeline (MNIST-5k, the bundled CNN, one torch thread as a trial has):

1. **Cost.** The median of ``--repeats`` full-data training epochs (no validation) is the unit;
   against it, the median time of a per-trial selection round (``GraftSelector.select``) at
   budgets 0.1, 0.2 and 0.3, scoring all the data or a random pool of 2 or 3 times the budget
   (``selection.pool``), and of the sweep's one ranking (``GraftSelector.rank_dataset``). The
   model is trained for one epoch first, so its features are those a round sees after warm-up.
2. **Accuracy.** Per-trial GRAFT with and without a pool, and random subsets, at budget 0.2:
   validation accuracy of 20-epoch trials over ``--seeds`` and learning rates 0.03 and 0.1.

Last stdout line with ``--json``: ``epoch_s``, ``rounds`` (label -> seconds and epochs), and
``accuracy`` (arm -> mean val_acc).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._cli import add_json_line  # noqa: E402
from benchmarks._local_trials import one_trial  # noqa: E402
from benchmarks._machine import print_report  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._timing import sgd_epoch  # noqa: E402
from graft_hpo._torch import iter_batches  # noqa: E402
from graft_hpo._torch import memory_format_for  # noqa: E402
from graft_hpo._torch import seed_everything  # noqa: E402
from graft_hpo._torch import to_device  # noqa: E402
from graft_hpo.config import load_pipeline  # noqa: E402
from graft_hpo.data import load_data  # noqa: E402
from graft_hpo.models import build_model  # noqa: E402
from graft_hpo.selection import GraftSelector  # noqa: E402
from graft_hpo.selection import build_selector  # noqa: E402

Json = dict[str, Any]
FRACTIONS = (0.1, 0.2, 0.3)
POOLS = (None, 2.0, 3.0)
PER_TRIAL = ["selection.scope=trial", "selection.warm_start_epochs=1"]  # warm-up, then a round
ACCURACY_ARMS = {
    "graft (all data scored)": ["selection.strategy=graft", *PER_TRIAL],
    "graft, pool 2x budget": ["selection.strategy=graft", "selection.pool=2", *PER_TRIAL],
    "random": ["selection.strategy=random", *PER_TRIAL],
}


def _epoch_s(model: torch.nn.Module, bundle: Any, batch_size: int) -> float:
    """One full-data training epoch, as the training loop runs it (no validation)."""
    device = torch.device("cpu")
    layout = memory_format_for(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    order = torch.randperm(len(bundle.train))
    batches = iter_batches(bundle.train, order, batch_size)
    return sgd_epoch(model, optimizer, ((to_device(x, device, layout), y) for x, y, _ in batches))


def measure_rounds(args: argparse.Namespace) -> Json:
    config = load_pipeline(args.pipeline, ["train.device=cpu"])
    bundle = load_data(config.data, seed=0)
    seed_everything(0)
    model = build_model(
        config.model, input_shape=bundle.input_shape, num_classes=bundle.num_classes
    )
    model.to(memory_format=memory_format_for("cpu"))
    _epoch_s(model, bundle, config.train.batch_size)  # warm-up: the features a round sees
    epochs = [_epoch_s(model, bundle, config.train.batch_size) for _ in range(args.repeats)]
    epoch = statistics.median(epochs)
    rounds: dict[str, Json] = {}

    def timed(label: str, call: Any) -> None:
        times = []
        for r in range(args.repeats):
            start = time.perf_counter()
            call(torch.Generator().manual_seed(r))
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        rounds[label] = {"seconds": seconds, "epochs": seconds / epoch}
        say(f"{label}: {seconds:.4f} s = {seconds / epoch:.3f} epoch")

    for fraction in FRACTIONS:
        for pool in POOLS:
            sel = load_pipeline(
                args.pipeline,
                [f"selection.fraction={fraction}", f"selection.pool={pool or 'null'}"],
            ).selection
            selector = build_selector(sel, config.train)
            label = f"round f={fraction} " + ("all data" if pool is None else f"pool {pool:g}x")
            timed(label, lambda g, s=selector: s.select(model, bundle.train_eval, generator=g))
    ranker = build_selector(config.selection, config.train)
    assert isinstance(ranker, GraftSelector), "the sweep's ranking is GRAFT's"
    timed(
        "sweep ranking (once)",
        lambda g: ranker.rank_dataset(model, bundle.train_eval, generator=g),
    )
    return {"epoch_s": epoch, "epoch_s_all": epochs, "rounds": rounds}


def measure_accuracy(args: argparse.Namespace) -> Json:
    results: dict[str, list[float]] = {arm: [] for arm in ACCURACY_ARMS}
    for seed in args.seeds:
        for lr in (0.03, 0.1):
            for arm, overrides in ACCURACY_ARMS.items():
                run = one_trial(
                    args.pipeline,
                    [
                        *overrides,
                        "train.device=cpu",
                        "emissions.enabled=false",
                        "selection.fraction=0.2",
                        f"train.seed={seed}",
                        f"train.lr={lr}",
                    ],
                )
                results[arm].append(run["metrics"]["val_acc"])
                say(f"seed {seed} lr {lr} {arm}: {results[arm][-1]:.3f}")
    return {arm: statistics.mean(v) for arm, v in results.items()}


def run_all(args: argparse.Namespace) -> Json:
    torch.set_num_threads(1)
    out = measure_rounds(args)
    out["accuracy"] = measure_accuracy(args) if args.seeds else {}
    return out


def markdown(report: Json) -> str:
    a = report["args"]
    lines = [
        "# One selection round against one training epoch",
        "",
        f"Machine: {report['machine']['description']}; 1 torch thread; pipeline "
        f"`{a['pipeline']}`; a full-data training epoch takes {report['epoch_s']:.3f} s "
        f"(median of {a['repeats']}). Medians of {a['repeats']} rounds.",
        "",
        *head("what | seconds | training epochs"),
    ]
    for label, r in report["rounds"].items():
        lines.append(f"| {label} | {r['seconds']:.4f} | {r['epochs']:.3f} |")
    if report["accuracy"]:
        lines += [
            "",
            f"Validation accuracy at budget 0.2, 20 epochs, seeds {a['seeds']} x lr 0.03, 0.1:",
            "",
            *head("arm | mean val acc (%)"),
        ]
        lines += [f"| {k} | {100 * v:.2f} |" for k, v in report["accuracy"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--pipeline", default="mnist")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    add_json_line(parser)
    args = parser.parse_args(argv)
    return print_report(args, run_report(args, run_all), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
