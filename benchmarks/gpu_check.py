"""CUDA check: the CIFAR-sized pipeline on synthetic 32x32x3 data with graft, random and full.

Trains ResNet-18 (CIFAR stem) for a few epochs on one GPU with bf16 autocast, selection on the
GPU too, and reports per strategy: validation accuracy, wall time, the time split between
selection and the rest, and training throughput. A few minutes end to end on one H200.

    python benchmarks/gpu_check.py                 # needs CUDA
    python benchmarks/gpu_check.py --device cpu --n 512 --epochs 2   # smoke run anywhere
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graft_hpo.config import load_pipeline
from graft_hpo.trial import run_trial


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n", type=int, default=20000, help="synthetic images (train+val+test)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--select-every", type=int, default=1, help="epochs between selections")
    parser.add_argument(
        "--noise", type=float, default=16.0, help="pixel noise (16: nearest class mean gets ~80%%)"
    )
    parser.add_argument("--json", help="write the raw numbers here")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here", file=sys.stderr)
        return 2

    base = [
        "data.name=synthetic",
        f"data.options={{n: {args.n}, shape: [3, 32, 32], num_classes: 10, noise: {args.noise}}}",
        "data.val_fraction=0.1",
        "data.test_fraction=0.1",
        "model.name=resnet18",
        f"train.epochs={args.epochs}",
        f"train.batch_size={args.batch_size}",
        "train.lr=0.05",
        f"train.device={args.device}",
        "emissions.enabled=false",  # codecarbon reads NVML for the whole device; not needed here
        "selection.warm_start_epochs=1",
        f"selection.select_every={args.select_every}",
        f"selection.fraction={args.fraction}",
    ]
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(
        f"device: {name}; torch {torch.__version__}; {args.n} images (noise {args.noise}), "
        f"{args.epochs} epochs, re-selection every {args.select_every}"
    )
    rows = []
    # one short discarded trial first: CUDA context, cuDNN autotuning and cuSOLVER handles
    # would otherwise be charged to whichever strategy runs first
    run_trial(load_pipeline("cifar10", [*base, "train.epochs=2"]), tracking=False)
    for strategy in ("full", "random", "graft"):
        config = load_pipeline("cifar10", [*base, f"selection.strategy={strategy}"])
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = run_trial(config, tracking=False)
        seconds = time.perf_counter() - start
        m = result.metrics
        n_train = int(args.n * 0.8)
        samples = m.get("fraction_effective", 1.0) * n_train * m.get("epochs_completed", 0)
        rows.append(
            {
                "strategy": strategy,
                "status": result.status,
                "error": result.error,
                "val_acc": m.get("val_acc"),
                "seconds": seconds,
                "train_s": m.get("train_s"),
                "selection_s": m.get("selection_s", 0.0),
                "fraction_effective": m.get("fraction_effective"),
                "samples_per_s": samples
                / max(m.get("train_s", seconds) - m.get("selection_s", 0), 1e-9),
            }
        )
        print(f"  {strategy}: {result.status} {seconds:.1f}s", flush=True)

    print(
        "\n| strategy | val acc | wall s | selection s | selection share | realised fraction "
        "| train samples/s | time vs full |"
    )
    print("|---|---|---|---|---|---|---|---|")
    full_s = rows[0]["seconds"]
    for r in rows:
        if r["status"] != "FINISHED":
            print(f"| {r['strategy']} | failed: {r['error']} |")
            continue
        print(
            f"| {r['strategy']} | {100 * r['val_acc']:.2f}% | {r['seconds']:.1f} | "
            f"{r['selection_s']:.2f} | {100 * r['selection_s'] / r['seconds']:.1f}% | "
            f"{r['fraction_effective']:.3f} | {r['samples_per_s']:.0f} | "
            f"{full_s / r['seconds']:.2f}x |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
