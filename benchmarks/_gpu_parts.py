"""The parts of benchmarks/gpu_check.py that run in its own process: ceiling, trials,
``pytest -m gpu``, variants, the hard synthetic set and the bundled pipelines."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks._ceiling import EpochRecorder
from benchmarks._ceiling import measure_ceiling
from benchmarks._ceiling import share_of_ceiling
from benchmarks._ceiling import trial_throughput
from graft_hpo._torch import memory_format_for
from graft_hpo.config import load_pipeline
from graft_hpo.trial import run_trial

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parents[1]


class Clock:
    """The run's time box: seconds left of ``budget_s``."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.start = time.perf_counter()

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)


def synthetic_overrides(args: argparse.Namespace, size: Json, *, epochs: int) -> list[str]:
    """The trials' pipeline: ResNet-18 (or ``--model``) on synthetic 32x32x3 images."""
    return [
        "data.name=synthetic",
        f"data.options={{n: {size['n']}, shape: [3, 32, 32], num_classes: 10, "
        f"noise: {args.noise}}}",
        "data.val_fraction=0.1",
        "data.test_fraction=0.1",
        f"model.name={size['model']}",
        f"train.epochs={epochs}",
        f"train.eval_every={epochs}",  # validate once, after the last epoch
        f"train.batch_size={size['batch_size']}",
        "train.lr=0.05",
        f"train.device={args.device}",
        "emissions.enabled=false",
        "selection.warm_start_epochs=1",
        f"selection.select_every={size['select_every']}",
        f"selection.fraction={args.fraction}",
    ]


def run_row(pipeline: str, overrides: list[str], device: str, **labels: Any) -> Json:
    """One trial through :func:`run_trial` (no MLflow), timed, with its epochs recorded."""
    recorder = EpochRecorder()
    config = load_pipeline(pipeline, overrides)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = run_trial(config, tracking=False, hooks=[recorder], evaluate_test=True)
    seconds = time.perf_counter() - start
    m = result.metrics
    selection_s = m.get("selection_s", 0.0)
    return {
        **labels,
        "model": config.model.name,
        "memory_format": config.train.memory_format,
        "data_on_device": config.train.data_on_device,
        "status": result.status,
        "error": result.error,
        "val_acc": m.get("val_acc"),
        "test_acc": m.get("test_acc"),
        "seconds": seconds,
        "train_s": m.get("train_s"),
        "selection_s": selection_s,
        "selection_share": selection_s / seconds,
        "rounds": len(recorder.rounds),
        "round_s": statistics.mean(recorder.rounds) if recorder.rounds else None,
        "fraction_effective": m.get("fraction_effective"),
        **trial_throughput(recorder.epochs),
    }


def add_synthetic_row(
    args: argparse.Namespace, report: Json, overrides: list[str], **labels: Any
) -> Json:
    """Run one trial of the cifar10 pipeline on ``overrides`` (the synthetic sets) and add its
    row, with its share of the ceiling, to ``report["trials"]``."""
    row = with_ceiling(run_row("cifar10", overrides, args.device, **labels), report)
    report.setdefault("trials", []).append(row)
    return row


def with_ceiling(row: Json, report: Json) -> Json:
    """``row`` with the ceiling of its model and layout and its share of it."""
    layout = {"auto": "auto", "channels_last": "channels_last", "contiguous": "contiguous"}
    key = f"{row['model']}/{layout[row['memory_format']]}"
    ceiling = report.get("ceilings_by_key", {}).get(key)
    row["ceiling"] = ceiling
    row["share_of_ceiling"] = share_of_ceiling(row.get("samples_per_s"), ceiling)
    return row


def part_ceiling(args: argparse.Namespace, size: Json, clock: Clock, report: Json) -> None:
    device = torch.device(args.device)
    rows = report.setdefault("ceilings", [])
    auto = "channels_last" if memory_format_for(device) == torch.channels_last else "contiguous"
    for model in size["ceiling_models"]:
        for layout in ("channels_last", "contiguous"):
            r = measure_ceiling(
                model,
                device=device,
                batch_size=size["batch_size"],
                memory_format=layout,
                seconds=size["ceiling_s"],
            )
            r["default_layout"] = layout == auto  # what train.memory_format=auto uses here
            rows.append(r)
            keys = [layout, "auto"] if layout == auto else [layout]
            for key in keys:
                report["ceilings_by_key"][f"{model}/{key}"] = r["samples_per_s"]
            print(f"  ceiling {model} {layout}: {r['samples_per_s']:.0f} samples/s", flush=True)
    # the JSON's `ceiling`: samples/s per model in the default layout
    report["ceiling"] = {m: report["ceilings_by_key"][f"{m}/auto"] for m in size["ceiling_models"]}


def part_trials(args: argparse.Namespace, size: Json, clock: Clock, report: Json) -> None:
    base = synthetic_overrides(args, size, epochs=size["epochs"])
    # discarded: CUDA context, cuDNN handles and cuSOLVER would be charged to the first row
    run_trial(load_pipeline("cifar10", [*base, "train.epochs=2"]), tracking=False)
    rows = report.setdefault("trials", [])
    for strategy in ("full", "random", "graft"):
        overrides = [*base, f"selection.strategy={strategy}"]
        add_synthetic_row(
            args, report, overrides, part="trials", strategy=strategy, variant="default"
        )
        print(f"  trials {strategy}: {rows[-1]['status']} {rows[-1]['seconds']:.1f}s", flush=True)
    full, graft = (
        next(r for r in rows if r["part"] == "trials" and r["strategy"] == s)
        for s in ("full", "graft")
    )
    if graft["round_s"] is not None and full.get("full_epoch_s"):
        report["selection"] = {
            "round_s": graft["round_s"],
            "rounds": graft["rounds"],
            "full_epoch_s": full["full_epoch_s"],
            "round_over_epoch": graft["round_s"] / full["full_epoch_s"],
        }


def part_pytest(args: argparse.Namespace, size: Json, clock: Clock, report: Json) -> None:
    if args.quick:
        report["skipped"].append({"part": "pytest", "why": "--quick"})
        return
    box = max(30.0, min(150.0, clock.left() - 60))  # leaves the last parts a minute
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=box)
        rc, out = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as err:  # its output comes as bytes, whatever text= said
        partial = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else ""
        rc, out = None, f"{partial}\ntimed out after {box:.0f}s"
    lines = [line for line in str(out).splitlines() if line.strip()]
    report["pytest_gpu"] = {
        "command": "pytest -m gpu -q",
        "rc": rc,
        "seconds": time.perf_counter() - start,
        "summary": lines[-1] if lines else "",
        "tail": lines[-25:],
    }


def part_variants(args: argparse.Namespace, size: Json, clock: Clock, report: Json) -> None:
    base = [
        *synthetic_overrides(args, size, epochs=size["variant_epochs"]),
        "selection.strategy=full",
    ]
    variants = {
        "host data": ["train.data_on_device=0"],
        "channels_last": ["train.memory_format=channels_last"],
        "contiguous": ["train.memory_format=contiguous"],
    }
    rows = report.setdefault("trials", [])
    for name, extra in variants.items():
        if clock.left() < 45:
            report["skipped"].append({"part": f"variants {name}", "why": "time"})
            continue
        add_synthetic_row(
            args, report, [*base, *extra], part="variants", strategy="full", variant=name
        )
        print(f"  variant {name}: {rows[-1]['samples_per_s'] or 0:.0f} samples/s", flush=True)


def part_hard(args: argparse.Namespace, size: Json, clock: Clock, report: Json) -> None:
    hard = size["hard"]
    base = synthetic_overrides(args, size, epochs=hard["epochs"])
    base[:4] = [
        "data.name=synthetic_hard",
        f"data.options={{n: {hard['n']}, shape: [3, 32, 32], num_classes: 10}}",
        "data.val_fraction=0.1",
        "data.test_fraction=0.0",  # the set brings its own clean test split
    ]
    rows = report.setdefault("trials", [])
    for strategy in ("full", "random", "graft"):
        if clock.left() < 40:
            report["skipped"].append({"part": f"hard {strategy}", "why": "time"})
            continue
        add_synthetic_row(
            args,
            report,
            [*base, f"selection.strategy={strategy}"],
            part="hard",
            strategy=strategy,
            variant="synthetic_hard",
        )
        print(f"  hard {strategy}: test acc {rows[-1]['test_acc']}", flush=True)


def part_bundled(args: argparse.Namespace, size: Json, clock: Clock, report: Json) -> None:
    rows = report.setdefault("trials", [])
    for pipeline, epochs in size["bundled"]:
        for strategy in ("full", "random", "graft"):
            if clock.left() < 25:
                report["skipped"].append({"part": f"bundled {pipeline}", "why": "time"})
                continue
            overrides = [f"train.device={args.device}", "emissions.enabled=false"]
            overrides += [f"selection.strategy={strategy}"]
            overrides += [f"train.epochs={epochs}"] if epochs else []
            row = run_row(
                pipeline,
                overrides,
                args.device,
                part="bundled",
                strategy=strategy,
                variant=pipeline,
            )
            # no ceiling: other images (1x8x8, 1x28x28) and the pipelines' own batch sizes
            rows.append({**row, "ceiling": None, "share_of_ceiling": None})
            print(f"  bundled {pipeline} {strategy}: val acc {row['val_acc']}", flush=True)
