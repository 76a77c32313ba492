"""Where one GRAFT selection round spends its time: forward pass, basis, kernel, maxvol, alignment.

Times each stage of :meth:`GraftSelector.select` (synchronising the device around each call, so
the split is exact but the total is a little slower than an unprofiled round) on a ResNet-18
(CIFAR stem) and synthetic 32x32x3 images, the setting of ``benchmarks/gpu_check.py``.

    python benchmarks/selection_profile.py                       # CUDA
    python benchmarks/selection_profile.py --device cpu --n 2048 # anywhere
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graft_hpo.models import build_model
from graft_hpo.selection import GraftSelector
from graft_hpo.selection import _graft

STAGES = ("_forward", "low_rank_basis", "gradient_kernel", "fast_maxvol", "alignment")


def _timed(fn: Callable[..., Any], name: str, totals: dict[str, float], device: str) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        totals[name] += time.perf_counter() - start
        return out

    return wrapper


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n", type=int, default=16000, help="images to select from")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--features", default="raw", choices=("raw", "embedding"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the raw numbers here")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("selection_profile: CUDA is not available here", file=sys.stderr)
        return 2

    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (args.n,), generator=g)
    dataset = torch.utils.data.TensorDataset(x, y)
    from graft_hpo.config import ModelConfig

    model = build_model(ModelConfig("resnet18"), input_shape=(3, 32, 32), num_classes=10)
    model = model.to(args.device)
    selector = GraftSelector(
        fraction=args.fraction, features=args.features, batch_size=args.batch_size
    )
    totals: dict[str, float] = collections.defaultdict(float)
    originals = {name: getattr(_graft, name) for name in STAGES if name != "_forward"}
    for name, fn in originals.items():
        setattr(_graft, name, _timed(fn, name, totals, args.device))
    forward = GraftSelector._forward
    GraftSelector._forward = _timed(forward, "_forward", totals, args.device)  # type: ignore[method-assign]
    try:
        selector.select(model, dataset, generator=g, device=args.device)  # warm-up
        totals.clear()
        walls = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            selector.select(model, dataset, generator=g, device=args.device)
            walls.append(time.perf_counter() - start)
    finally:
        for name, fn in originals.items():
            setattr(_graft, name, fn)
        GraftSelector._forward = forward  # type: ignore[method-assign]

    wall = sum(walls) / len(walls)
    split = {name: totals[name] / args.rounds for name in STAGES}
    split["other"] = wall - sum(split.values())
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device: {name}; {args.n} images, batch {args.batch_size}, {args.features} features")
    print("| stage | s per round | share |\n|---|---|---|")
    for stage, seconds in split.items():
        print(f"| {stage} | {seconds:.3f} | {100 * seconds / wall:.0f}% |")
    print(f"| total | {wall:.3f} | 100% |")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "wall_s": wall, "split": split}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
