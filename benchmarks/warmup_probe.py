"""Why ``selection.reuse_warmup`` selects differently: the recorded pass against the round's own.

Run from the repository root:

    .venv/bin/python benchmarks/warmup_probe.py --seeds 0 1 2 > benchmarks/results/warmup_probe.md

Each cell's per-trial recipe (``benchmarks/_noise.py``) runs with ``selection.reuse_warmup=true``
up to its first round. There, with the model as the round sees it, the probe compares the
outputs recorded during the last warm-up epoch with the round's own eval-mode pass, by quarter
of that epoch (the order the training loop saw the samples in): the cosine of each sample's
two embeddings, and how often the two logits' arg-max agree. Then it runs the round both ways
(same generator state): the candidates the ``knn`` filter left out, and the subsets' overlap
(Jaccard). The trial stops there. Progress goes to stderr, the Markdown report to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._machine import new_report  # noqa: E402
from benchmarks._machine import say  # noqa: E402
from benchmarks._noise import CELLS  # noqa: E402
from benchmarks._noise import overrides  # noqa: E402
from benchmarks._tables import head  # noqa: E402
from graft_hpo.config import load_pipeline  # noqa: E402
from graft_hpo.selection import GraftSelector  # noqa: E402
from graft_hpo.selection._passes import eval_pass  # noqa: E402
from graft_hpo.trial import run_trial  # noqa: E402

Json = dict[str, Any]
QUARTERS = 4


class _Stop(Exception):
    """Raised once the first round is measured."""


def _jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    sa, sb = set(a.tolist()), set(b.tolist())
    return len(sa & sb) / max(1, len(sa | sb))


def compare(
    select: Any, selector: GraftSelector, model: Any, dataset: Any, generator: Any
) -> Json:
    """The recorded pass against the eval pass, by quarter of the epoch; the round both ways
    (``select``: the selector's method, unpatched)."""
    warm = selector._warm
    assert warm is not None, "nothing was recorded: is reuse_warmup on, with a warm-up?"
    parts = warm._parts  # (index, logits, embeds, y) per training step, in training order
    n = len(dataset)
    _, logits_e, embeds_e, _ = eval_pass(model, dataset, [torch.arange(n)], "cpu", raw=False)
    index = torch.cat([p[0] for p in parts])
    logits_r = torch.cat([p[1] for p in parts]).float()
    embeds_r = torch.cat([p[2] for p in parts]).float()
    cos = F.cosine_similarity(embeds_r, embeds_e[index], dim=1)
    agree = (logits_r.argmax(1) == logits_e[index].argmax(1)).float()
    quarters = torch.arange(len(index)) * QUARTERS // len(index)
    out: Json = {
        "cos": [float(cos[quarters == q].mean()) for q in range(QUARTERS)],
        "agree": [float(agree[quarters == q].mean()) for q in range(QUARTERS)],
    }
    state = generator.get_state()
    left: dict[str, torch.Tensor] = {}
    original = GraftSelector._filter

    def spy(self: GraftSelector, *args: Any) -> Any:
        kept, left_out, forwarded = original(self, *args)
        left["now"] = left_out if left_out is not None else torch.zeros(0, dtype=torch.long)
        return kept, left_out, forwarded

    GraftSelector._filter = spy  # type: ignore[method-assign]
    try:
        reused = select(selector, model, dataset, generator=generator)
        left_reused = left["now"]
        generator.set_state(state)
        own = select(selector, model, dataset, generator=generator)
        left_own = left["now"]
        other = torch.Generator().manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
        repartitioned = select(selector, model, dataset, generator=other)
    finally:
        GraftSelector._filter = original  # type: ignore[method-assign]
    out.update(
        left_own=len(left_own) / n,
        left_reused=len(left_reused) / n,
        left_jaccard=_jaccard(left_own, left_reused),
        subset_jaccard=_jaccard(own.indices, reused.indices),
        partition_jaccard=_jaccard(own.indices, repartitioned.indices),
    )
    return out


def probe(cell: str, seed: int, hard_n: int) -> Json:
    """Run ``cell``'s trial with reuse up to its first round and :func:`compare` there."""
    pipeline, sets = overrides(cell, "graft_knn_reuse", 0.2, seed, epochs=None, hard_n=hard_n)
    config = load_pipeline(pipeline, overrides=sets)
    seen: list[Json] = []
    original = GraftSelector.select

    def first(self: GraftSelector, model: Any, dataset: Any, **kw: Any) -> Any:
        with torch.inference_mode():
            seen.append(compare(original, self, model, dataset, kw["generator"]))
        raise _Stop

    GraftSelector.select = first  # type: ignore[method-assign]
    try:
        result = run_trial(config, tracking=False)
    finally:
        GraftSelector.select = original  # type: ignore[method-assign]
    if not seen:  # run_trial turns the exception into a failed result
        raise RuntimeError(f"{cell}: no first round ({result.error})")
    return {"cell": cell, "seed": seed, **seen[0]}


def markdown(report: Json) -> str:
    qs = " | ".join(f"cos q{q + 1}" for q in range(QUARTERS))
    qa = " | ".join(f"arg-max q{q + 1}" for q in range(QUARTERS))
    lines = [
        "# selection.reuse_warmup: the last warm-up epoch's outputs against the round's own",
        "",
        f"Machine: {report['machine']['cpu']}; seeds {report['args']['seeds']}; "
        f"synthetic_hard n={report['args']['hard_n']}. q1-q4: quarters of the recorded epoch, "
        "in training order (q1 seen first). Left out: the knn filter's share of the "
        "candidates with the round's own pass / with the recorded one, and the two sets' "
        "Jaccard overlap; subsets: the Jaccard overlap of the two subsets, and (for scale) of "
        "the round's own subset with its own pass but another partition into selection "
        "batches.",
        "",
        *head(
            f"cell | seed | {qs} | {qa} | left out own | left out reused | left out overlap "
            "| subsets overlap | own, another partition"
        ),
    ]
    for r in report["rows"]:
        cos = " | ".join(f"{c:.3f}" for c in r["cos"])
        agree = " | ".join(f"{a:.1%}" for a in r["agree"])
        lines.append(
            f"| {r['cell']} | {r['seed']} | {cos} | {agree} | {r['left_own']:.1%} "
            f"| {r['left_reused']:.1%} | {r['left_jaccard']:.2f} | {r['subset_jaccard']:.2f} "
            f"| {r['partition_jaccard']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--cells",
        nargs="+",
        choices=list(CELLS),
        default=["digits_noise0", "digits_noise0.2", "hard", "mnist_noise0"],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hard-n", type=int, default=8000, help="synthetic_hard's pool size")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report = {**new_report(args), "rows": []}
    for seed in args.seeds:
        for cell in args.cells:
            report["rows"].append(probe(cell, seed, args.hard_n))
            say(f"{cell} seed={seed}: {report['rows'][-1]}")
    report["rows"].sort(key=lambda r: (r["cell"], r["seed"]))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
