"""Ways to get each batch's top-r left singular subspace, timed side by side (GPU or CPU).

``low_rank_basis`` is the largest stage of a GRAFT selection round on an H200
(``benchmarks/selection_profile.py``). This compares, on the same batched features:

- ``eigh``: eigenvectors of the B x B Gram matrix (the current method),
- ``eigh64``: the same in float64,
- ``eigh_cpu``: the Gram matrices copied to the CPU and solved there in float64,
- ``svd_<driver>``: ``torch.linalg.svd`` of the (d x B) transposed features, CUDA drivers,
- ``subspace``: two block power iterations on the Gram matrix (QR), then Rayleigh-Ritz on the
  small r x r problem, which also orders the directions; ``subspace_os``: four iterations with
  32 extra columns.

and reports ms per call and the largest principal angle (degrees) to the float64 reference.

    python benchmarks/basis_bench.py                      # CUDA
    python benchmarks/basis_bench.py --device cpu --b 8   # anywhere
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch


def eigh(F: torch.Tensor, r: int) -> torch.Tensor:
    _, vecs = torch.linalg.eigh(F @ F.mT)
    return vecs[..., -r:].flip(-1)


def eigh64(F: torch.Tensor, r: int) -> torch.Tensor:
    _, vecs = torch.linalg.eigh((F @ F.mT).double())
    return vecs[..., -r:].flip(-1).float()


def eigh_cpu(F: torch.Tensor, r: int) -> torch.Tensor:
    _, vecs = torch.linalg.eigh((F @ F.mT).double().cpu())
    return vecs[..., -r:].flip(-1).float().to(F.device)


def svd(driver: str | None) -> Callable[[torch.Tensor, int], torch.Tensor]:
    def run(F: torch.Tensor, r: int) -> torch.Tensor:
        # F^T = U S V^T with F^T tall (d x B): F's left singular vectors are V
        _, _, Vh = torch.linalg.svd(F.mT, full_matrices=False, driver=driver)
        return Vh.mT[..., :r]

    return run


def subspace(F: torch.Tensor, r: int, iters: int = 2, oversample: int = 0) -> torch.Tensor:
    G = F @ F.mT
    g = torch.Generator(device=F.device).manual_seed(0)
    m = min(r + oversample, G.shape[-1])
    Q = torch.randn(*G.shape[:-1], m, device=F.device, dtype=F.dtype, generator=g)
    for _ in range(iters):
        Q, _ = torch.linalg.qr(G @ Q)
    _, W = torch.linalg.eigh(Q.mT @ G @ Q)  # m x m: orders the directions
    return (Q @ W)[..., -r:].flip(-1)


def max_angle_deg(U: torch.Tensor, ref: torch.Tensor) -> float:
    s = torch.linalg.svdvals(ref.mT.double() @ U.double()).clamp(max=1.0)
    return float(torch.rad2deg(torch.arccos(s.min(dim=-1).values)).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--b", type=int, default=63, help="batches")
    parser.add_argument("--n", type=int, default=256, help="samples per batch")
    parser.add_argument("--d", type=int, default=512, help="feature dimension")
    parser.add_argument("--r", type=int, default=154, help="rank kept")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", help="write the raw numbers here")
    args = parser.parse_args()
    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    # features with a decaying spectrum, like a network's embeddings
    decay = torch.logspace(0, -3, args.d)
    F = (torch.randn(args.b, args.n, args.d, generator=g) * decay).to(dev)
    ref = eigh64(F.double(), args.r).double()

    methods: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
        "eigh": eigh,
        "eigh64": eigh64,
        "eigh_cpu": eigh_cpu,
        "subspace": subspace,
        "subspace_os": lambda F, r: subspace(F, r, iters=4, oversample=32),
    }
    drivers = ("gesvd", "gesvdj", "gesvda") if dev.type == "cuda" else (None,)
    for driver in drivers:
        methods[f"svd_{driver or 'default'}"] = svd(driver)
    rows = []
    for name, fn in methods.items():
        try:
            fn(F, args.r)  # warm-up
            if dev.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.reps):
                U = fn(F, args.r)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            ms = 1000 * (time.perf_counter() - start) / args.reps
            rows.append({"method": name, "ms": ms, "angle_deg": max_angle_deg(U, ref)})
        except RuntimeError as err:
            rows.append({"method": name, "ms": math.nan, "error": str(err)[:120]})
    print(f"{args.b} batches of {args.n} x {args.d}, rank {args.r}, {args.device}")
    print("| method | ms per call | max angle to float64 (deg) |\n|---|---|---|")
    for row in rows:
        print(f"| {row['method']} | {row['ms']:.1f} | {row.get('angle_deg', row.get('error'))} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
