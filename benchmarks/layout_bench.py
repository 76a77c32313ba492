"""Layout benchmark: NCHW against channels_last for the bundled models on the CPU.

    .venv/bin/python benchmarks/layout_bench.py --json benchmarks/results/layout.json \\
        > benchmarks/results/layout.md

Backs the claim in :func:`graft_hpo._torch.memory_format_for`. Models come from bundled
pipelines through :func:`graft_hpo.models.build_model`: ``mnist``'s SmallCNN (1, 28, 28) at
``model.options.width`` 16, 32 and 48, ``cifar10``'s ResNet-18 (3, 32, 32). Per model, on the
CPU with ``--threads`` threads, each layout gets its own copy of the same initial weights
(``model.to(memory_format=...)``) and times (a) one epoch of SGD steps (momentum 0.9,
cross-entropy) over a fixed synthetic set, batch 128 (64 for ResNet-18), and (b) an eval-mode
``torch.inference_mode()`` forward pass over the same samples, 1024 at a time. Batches are
converted with ``.contiguous(memory_format=...)`` inside the clock, as ``to_device`` does in
the training loop. A discarded warm-up round per layout, then ``--repeats`` rounds alternating
which layout goes first, so a slow phase of the shared machine hits both. Reported: medians,
NCHW / channels_last (above 1: channels_last is faster), and whether both layouts give the
same logits. Progress to stderr, Markdown to stdout; ``--json`` writes every time.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._cli import positive_int  # noqa: E402
from benchmarks._machine import interpreter  # noqa: E402
from benchmarks._machine import load_avg  # noqa: E402
from benchmarks._machine import run_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._machine import write_json  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from benchmarks._timing import sgd_epoch  # noqa: E402
from graft_hpo.config import load_pipeline  # noqa: E402
from graft_hpo.models import build_model  # noqa: E402

Json = dict[str, Any]

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
EVAL_SLICE = 1024
SAME_WITHIN = 0.05  # ratios within 5% of 1 are "no clear difference" on a noisy machine


@dataclass(frozen=True)
class Spec:
    label: str
    pipeline: str
    overrides: tuple[str, ...]
    input_shape: tuple[int, int, int]
    samples: int
    batch: int


# ---------------------------------------------------------------------------------------------
# pure helpers (tested in tests/benchmarks/test_layout_bench.py)


def summarise(times: dict[str, dict[str, list[float]]]) -> Json:
    """Medians and speed-ups from ``times[phase][layout]`` lists of seconds.

    Returns:
        ``{phase: {"nchw_s", "channels_last_s", "speedup"}}`` with medians in seconds and
        ``speedup = nchw_s / channels_last_s`` (above 1: channels_last is faster).
    """
    out: Json = {}
    for phase, per_layout in times.items():
        nchw = statistics.median(per_layout["nchw"])
        cl = statistics.median(per_layout["channels_last"])
        out[phase] = {"nchw_s": nchw, "channels_last_s": cl, "speedup": nchw / cl}
    return out


def verdict(speedup: float) -> str:
    """Words for one NCHW / channels_last ratio."""
    if abs(speedup - 1.0) <= SAME_WITHIN:
        return "no clear difference"
    if speedup > 1.0:
        return f"channels_last {speedup:.2f}x faster"
    return f"NCHW {1.0 / speedup:.2f}x faster"


def markdown_table(rows: list[Json]) -> list[str]:
    """The results table, one row per model, then one verdict line per model."""
    lines = head(
        "model | samples / batch | train epoch NCHW (s) | channels_last (s) | speed-up "
        "| eval forward NCHW (s) | channels_last (s) | speed-up | logits"
    )
    for r in rows:
        t, e = r["summary"]["train"], r["summary"]["eval"]
        lines.append(
            f"| {r['label']} | {r['samples']} / {r['batch']} "
            f"| {t['nchw_s']:.3f} | {t['channels_last_s']:.3f} | {t['speedup']:.2f}x "
            f"| {e['nchw_s']:.3f} | {e['channels_last_s']:.3f} | {e['speedup']:.2f}x "
            f"| {'equal' if r['equal'] else 'DIFFER'} |"
        )
    lines.append("")
    for r in rows:
        t, e = r["summary"]["train"], r["summary"]["eval"]
        lines.append(
            f"- {r['label']}: training {verdict(t['speedup'])}; eval forward "
            f"{verdict(e['speedup'])}; logits {'equal' if r['equal'] else 'DIFFER'} "
            f"(max |diff| {r['max_abs_diff']:.2g})."
        )
    return lines


# ---------------------------------------------------------------------------------------------
# measurement


def train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    fmt: torch.memory_format,
) -> float:
    """Seconds for one epoch of SGD steps over ``x`` (n, C, H, W) in order."""
    batches = zip(x.split(batch), y.split(batch), strict=True)
    return sgd_epoch(model, opt, ((xb.contiguous(memory_format=fmt), yb) for xb, yb in batches))


def eval_forward(model: nn.Module, x: torch.Tensor, fmt: torch.memory_format) -> float:
    """Seconds for an eval-mode forward pass over ``x`` in slices of ``EVAL_SLICE``."""
    model.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for xb in x.split(EVAL_SLICE):
            model(xb.contiguous(memory_format=fmt))
    return time.perf_counter() - start


def logits_agree(model: nn.Module, x: torch.Tensor) -> tuple[bool, float]:
    """Whether one eval forward pass gives the same logits in both layouts, and the max gap."""
    out = {}
    for name, fmt in LAYOUTS.items():
        m = copy.deepcopy(model).to(memory_format=fmt).eval()
        with torch.inference_mode():
            out[name] = m(x.contiguous(memory_format=fmt))
    gap = (out["nchw"] - out["channels_last"]).abs().max().item()
    try:
        torch.testing.assert_close(out["channels_last"], out["nchw"], rtol=1e-4, atol=1e-5)
    except AssertionError:
        return False, gap
    return True, gap


def bench_model(spec: Spec, repeats: int, seed: int) -> Json:
    cfg = load_pipeline(spec.pipeline, list(spec.overrides))
    torch.manual_seed(seed)  # build_model draws the initial weights from torch's default RNG
    base = build_model(cfg.model, input_shape=spec.input_shape, num_classes=10)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(spec.samples, *spec.input_shape, generator=gen)
    y = torch.randint(0, 10, (spec.samples,), generator=gen)
    equal, gap = logits_agree(base, x[:EVAL_SLICE])

    models, opts = {}, {}
    for name, fmt in LAYOUTS.items():
        models[name] = copy.deepcopy(base).to(memory_format=fmt)
        opts[name] = torch.optim.SGD(models[name].parameters(), lr=0.01, momentum=0.9)
    times: dict[str, dict[str, list[float]]] = {
        "train": {n: [] for n in LAYOUTS},
        "eval": {n: [] for n in LAYOUTS},
    }
    names = list(LAYOUTS)
    for rnd in range(repeats + 1):  # round 0 is the warm-up
        order = names if rnd % 2 == 0 else names[::-1]
        for name in order:
            fmt = LAYOUTS[name]
            t = train_epoch(models[name], opts[name], x, y, spec.batch, fmt)
            e = eval_forward(models[name], x, fmt)
            if rnd:
                times["train"][name].append(t)
                times["eval"][name].append(e)
            tag = "warm-up" if rnd == 0 else f"{rnd}/{repeats}"
            say(f"[{spec.label} {tag}] {name}: train {t:.3f}s eval {e:.3f}s")
    return {
        "label": spec.label,
        "pipeline": spec.pipeline,
        "overrides": list(spec.overrides),
        "input_shape": list(spec.input_shape),
        "samples": spec.samples,
        "batch": spec.batch,
        "equal": equal,
        "max_abs_diff": gap,
        "times": times,
        "summary": summarise(times),
        "load_avg_1min_at_end": load_avg(),
    }


# ---------------------------------------------------------------------------------------------
# main


def specs(args: argparse.Namespace) -> list[Spec]:
    out = [
        Spec(f"cnn w{w}", "mnist", (f"model.options.width={w}",), (1, 28, 28), args.samples, 128)
        for w in args.widths
    ]
    if args.resnet:
        out.append(Spec("resnet18", "cifar10", (), (3, 32, 32), args.resnet_samples, 64))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--widths", type=int, nargs="+", default=None, help="CNN widths (16 32 48)"
    )
    parser.add_argument("--no-resnet", dest="resnet", action="store_false")
    parser.add_argument("--samples", type=int, default=None, help="synthetic samples, CNN (2048)")
    parser.add_argument("--resnet-samples", type=int, default=256, help="same, ResNet-18")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per layout (5)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0, help="weights and synthetic data")
    parser.add_argument("--quick", action="store_true", help="CNN w16, 2 repeats, 512 samples")
    parser.add_argument("--json", type=Path, default=None, help="write every time here")
    args = parser.parse_args(argv)
    if args.quick:
        args.widths, args.resnet = args.widths or [16], False
        args.repeats, args.samples = args.repeats or 2, args.samples or 512
    args.widths, args.samples = args.widths or [16, 32, 48], args.samples or 2048
    args.repeats = args.repeats or 5
    if args.repeats < 1 or args.samples < 1 or args.resnet_samples < 1:
        parser.error("--repeats, --samples and --resnet-samples must be >= 1")
    torch.set_num_threads(args.threads)

    report = run_report(
        args,
        lambda args: {"models": [bench_model(s, args.repeats, args.seed) for s in specs(args)]},
    )
    report["command"] = shlex.join([interpreter(), *sys.argv])
    m = report["machine"]
    lines = [
        "# Layout benchmark: NCHW vs channels_last on the CPU",
        "",
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} with "
        f"{m['torch_threads']} intra-op thread(s), Python {m['python']}, 1-min load at start "
        f"{m['load_avg_1min_at_start']:.2f}.",
        f"Command: `{report['command']}`; median of {args.repeats} alternating rounds after "
        f"one warm-up round per layout; wall time {report['wall_s']:.0f} s.",
        "Speed-up = NCHW / channels_last (above 1: channels_last is faster).",
        "",
        *markdown_table(report["models"]),
    ]
    print("\n".join(lines))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
