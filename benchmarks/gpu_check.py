"""GPU check (issue 12): ceiling, trials, layouts, compile, selection, trials per GPU, energy.

One command makes every device measurement, in under 8 minutes on one H200, and writes the
JSON and a Markdown table under docs/gpu/:

    python benchmarks/gpu_check.py --all                          # needs CUDA
    python benchmarks/gpu_check.py --all --device cpu --quick     # every part, tiny, anywhere
    python benchmarks/gpu_check.py --device cpu --parts ceiling   # the CPU's ceiling alone

Parts (``--parts``; ``--all`` is every one, in this order, each time-boxed within
``--budget-s``; what does not fit is listed under ``skipped``):

- ``concurrency``: 1, 2 and 4 identical trials at once on one device, each in its own process
  (what ``resources.gpu`` 1, 0.5, 0.25 does under Ray), with the bundled ``cnn`` and
  ``resnet18``: trials per minute, and each trial's attributed GPU energy against the device's
  own energy counter over the time the trials measured. Runs first, while this process has not
  touched CUDA, so the trials are the only processes on the device.
- ``compile``: ``torch.compile`` on the ceiling's step (resnet18): its compile seconds, its
  speed, and whether it pays for itself within a trial of the bundled cifar10 pipeline.
- ``ceiling``: samples/s of the bare training step (a batch already on the device, no data
  pipeline, no selection) per model and layout, at the trials' batch size and precision.
- ``trials``: ResNet-18 on synthetic 32x32x3 images (pixel noise 16: the nearest class mean
  gets about 80%), full data, random subsets and GRAFT at budget 0.3: accuracy, time, the
  selection's share, training samples/s and its share of the ceiling; with it, a selection
  round as a fraction of a full-data training epoch.
- ``pytest``: ``pytest -m gpu`` (the CUDA tests, among them the out-of-memory fault test).
- ``variants``: full-data trials with the data kept on the host (``train.data_on_device=0``)
  and in each layout (``train.memory_format``), against the default.
- ``hard``: ``synthetic_hard`` (rare modes, near-duplicates, label noise; a clean test set),
  where what a subset contains matters: graft against random at the same budget.
- ``bundled``: the bundled ``digits`` and ``mnist`` (MNIST-5k) pipelines as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")

from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._gpu_parts import Clock  # noqa: E402
from benchmarks._gpu_parts import part_bundled  # noqa: E402
from benchmarks._gpu_parts import part_ceiling  # noqa: E402
from benchmarks._gpu_parts import part_hard  # noqa: E402
from benchmarks._gpu_parts import part_pytest  # noqa: E402
from benchmarks._gpu_parts import part_trials  # noqa: E402
from benchmarks._gpu_parts import part_variants  # noqa: E402
from benchmarks._gpu_report import add_time_vs_full  # noqa: E402
from benchmarks._gpu_report import goals  # noqa: E402
from benchmarks._gpu_report import markdown  # noqa: E402
from benchmarks._gpu_workers import WorkerPool  # noqa: E402
from benchmarks._gpu_workers import part_compile  # noqa: E402
from benchmarks._gpu_workers import part_concurrency  # noqa: E402
from benchmarks._machine import json_safe  # noqa: E402
from benchmarks._machine import machine_info  # noqa: E402

Json = dict[str, Any]

PARTS = ("concurrency", "compile", "ceiling", "trials", "pytest", "variants", "hard", "bundled")

PART_FUNCTIONS: dict[str, Callable[[argparse.Namespace, Json, Clock, Json], None]] = {
    "concurrency": part_concurrency,
    "compile": part_compile,
    "ceiling": part_ceiling,
    "trials": part_trials,
    "pytest": part_pytest,
    "variants": part_variants,
    "hard": part_hard,
    "bundled": part_bundled,
}
# the least time a part needs to start (s, on an H200); a part is skipped below it
MIN_LEFT = {
    "concurrency": 120,
    "compile": 90,
    "ceiling": 20,
    "trials": 60,
    "pytest": 40,
    "variants": 45,
    "hard": 60,
    "bundled": 30,
}


def sizes(args: argparse.Namespace) -> Json:
    """Every size a part uses: the H200 defaults, or tiny ones with ``--quick``."""
    size: Json = {
        "model": "resnet18",
        "n": 20000,
        "epochs": 12,
        "select_every": 5,
        "batch_size": 256,
        "ceiling_s": 3.0,
        "ceiling_models": ["resnet18", "cnn"],
        "variant_epochs": 4,
        "hard": {"n": 20000, "epochs": 12},
        "bundled": [("digits", None), ("mnist", None)],
        "concurrency": {"models": {"cnn": 10, "resnet18": 6}, "ks": [1, 2, 4], "n": 16000},
    }
    if args.quick:
        size.update(model="cnn", n=600, epochs=3, select_every=1, batch_size=64, ceiling_s=1.0)
        size.update(ceiling_models=["cnn"], variant_epochs=2, bundled=[("digits", 3)])
        size.update(hard={"n": 800, "epochs": 3})
        size.update(concurrency={"models": {"cnn": 2}, "ks": [1, 2], "n": 600})
    for key in ("model", "n", "epochs", "select_every", "batch_size"):  # what the flags say
        given = getattr(args, key)
        size[key] = given if given is not None else size[key]
    return size


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--all", action="store_true", help="every part (the issue 12 check)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, help="default: ceiling trials")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run anywhere")
    parser.add_argument("--budget-s", type=float, default=None, help="default 420 (quick 900)")
    parser.add_argument("--model", default=None, help="trials' model (resnet18; quick: cnn)")
    parser.add_argument("--n", type=int, default=None, help="synthetic images (train+val+test)")
    parser.add_argument("--epochs", type=positive_int, default=None)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--select-every", type=int, default=None, help="epochs between rounds")
    parser.add_argument(
        "--noise", type=float, default=16.0, help="pixel noise (16: nearest class mean ~80%%)"
    )
    parser.add_argument(
        "--out",
        "--json",
        dest="out",
        type=Path,
        default=None,
        help="JSON path (default docs/gpu/gpu_check.json on CUDA); .md beside",
    )
    args = parser.parse_args(argv)
    args.budget_s = args.budget_s or (900.0 if args.quick else 420.0)
    return args


def run_parts(args: argparse.Namespace, parts: list[str], report: Json) -> None:
    """Every part in ``PARTS`` order, each within what is left of the time box."""
    size, clock = sizes(args), Clock(args.budget_s)
    report["sizes"] = size
    pooled = [p for p in ("concurrency", "compile") if p in parts]
    workers = max(size["concurrency"]["ks"]) if "concurrency" in parts else 1
    report["_pool"] = WorkerPool(workers) if pooled else None
    try:
        for part in (p for p in PARTS if p in parts):
            if part not in pooled and report["_pool"] is not None:
                report["_pool"].close()  # before this process touches CUDA itself
                report["_pool"] = None
            if clock.left() < (0 if args.quick else MIN_LEFT[part]):
                report["skipped"].append({"part": part, "why": f"{clock.left():.0f}s left"})
                continue
            start = time.perf_counter()
            print(f"{part} ({clock.left():.0f}s left)", flush=True)
            try:
                PART_FUNCTIONS[part](args, size, clock, report)
            except Exception as err:  # one part failing keeps the others' numbers
                report["errors"].append({"part": part, "error": f"{type(err).__name__}: {err}"})
            report["part_s"][part] = time.perf_counter() - start
    finally:
        if report["_pool"] is not None:
            report["_pool"].close()
        del report["_pool"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here (try --device cpu --quick)", file=sys.stderr)
        return 2
    if args.out is not None and args.out.is_dir():  # refused before minutes of measuring
        print(f"gpu_check: --out must be a JSON file; got the folder {args.out}", file=sys.stderr)
        return 2
    parts = list(PARTS) if args.all else (args.parts or ["ceiling", "trials"])
    command = " ".join(
        ["python benchmarks/gpu_check.py", *(sys.argv[1:] if argv is None else argv)]
    )
    report: Json = {
        "command": command,
        "parts": parts,
        "skipped": [],
        "errors": [],
        "part_s": {},
        "ceilings_by_key": {},
    }
    start = time.perf_counter()
    run_parts(args, parts, report)
    report["wall_s"] = time.perf_counter() - start
    # only now: naming the GPU creates a CUDA context, which the concurrency part must not see
    report["machine"] = machine_info()
    add_time_vs_full(report.get("trials", []))
    report["goals"] = goals(report)
    default = "docs/gpu/gpu_check.json" if args.device.startswith("cuda") else None
    out = args.out or (ROOT / default if default else None)
    if out is not None:  # the numbers first: they survive a failure of the tables
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(json_safe(report), indent=2) + "\n")
    text = markdown(report)
    print(text)
    if out is not None:
        out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
