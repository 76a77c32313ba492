"""``synthetic_hard``: a seeded set where what a subset contains matters (for selection tests).

The plain ``synthetic`` set is one Gaussian blob per class with balanced classes: any random
30% of it teaches a model as much as any other 30%, so it cannot tell a good selector from a
random one. This one has the three things real data has and selection is meant to handle:

- **rare sub-populations**: each class is a mixture of ``modes`` patterns with Zipf weights
  (mode k is k times rarer than the first), and classes are imbalanced (the largest is
  ``imbalance`` times the smallest), so a random subset under-samples the rare modes;
- **near-duplicates**: a ``duplicates`` share of each mode's samples are copies of its other
  samples plus a little jitter, so a random subset spends budget on samples it already has;
- **label noise**: a ``label_noise`` share of the training pool has a wrong label.

The test split is clean and balanced: every class equally, modes drawn uniformly, no duplicates,
no wrong labels. ``test_acc`` therefore measures whether the model learnt every mode of every
class, which is what a selection that covers the data (GRAFT's maxvol picks) should buy over
random subsets at the same budget.

What each training sample is (its mode, whether it is a copy, whether its label is wrong) is
known to the generator; :func:`synthetic_hard_pool` returns it, for benchmarks that report
what a subset holds. Nothing in training or selection reads it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from graft_hpo._registry import check_float
from graft_hpo._registry import check_int
from graft_hpo.data._base import DATASETS
from graft_hpo.data._base import Pool
from graft_hpo.data._base import SampleTruth
from graft_hpo.data._base import Source
from graft_hpo.data._synthetic import class_means
from graft_hpo.data._synthetic import parse_shape
from graft_hpo.exceptions import ConfigError

__all__ = ["counts_for", "synthetic_hard", "synthetic_hard_pool"]


def counts_for(weights: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` split in proportion to ``weights``: one each, the rest by largest remainders.

    Args:
        weights: ``(k,)`` positive weights, ``k <= n``.
        n: the total.

    Returns:
        ``(k,)`` int64 counts summing to ``n``.

    Example:
        >>> counts_for(torch.tensor([3.0, 1.0]), 10).tolist()
        [7, 3]
    """
    share = weights.double() / weights.double().sum() * (n - len(weights))
    counts = share.floor().long() + 1
    left = n - int(counts.sum())
    order = torch.argsort(share - share.floor(), descending=True, stable=True)
    counts[order[:left]] += 1
    return counts


def _class_sizes(num_classes: int, n: int, imbalance: float, modes: int) -> torch.Tensor:
    """Samples per class, the largest ``imbalance`` times the smallest; each holds every mode."""
    ranks = torch.arange(num_classes, dtype=torch.float64) / max(num_classes - 1, 1)
    sizes = counts_for(imbalance**-ranks, n)
    if int(sizes.min()) < modes:
        raise ConfigError(
            f"data.options.n must give every class at least modes={modes} samples under "
            f"imbalance={imbalance:g}; got n={n}, whose smallest class has {int(sizes.min())} "
            "(raise n, or lower imbalance or modes)"
        )
    return sizes


def _mode_samples(
    mean: torch.Tensor, count: int, *, noise: float, duplicates: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` samples of one mode: originals ``mean + noise * N(0, 1)``, the rest copies of
    random originals plus ``0.05 * noise`` jitter; and ``(count,)`` bool, True for a copy."""
    originals = max(1, round(count * (1.0 - duplicates)))
    copy = torch.arange(count) >= originals
    x = mean + noise * torch.randn(originals, *mean.shape, generator=g)
    copies = count - originals
    if copies > 0:
        source = torch.randint(0, originals, (copies,), generator=g)
        jitter = 0.05 * noise * torch.randn(copies, *mean.shape, generator=g)
        x = torch.cat([x, x[source] + jitter])
    return x, copy


def _generate(
    *,
    n: int = 20000,
    shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    modes: int = 8,
    imbalance: float = 10.0,
    duplicates: float = 0.5,
    label_noise: float = 0.1,
    noise: float = 8.0,
    test_n: int = 4000,
    seed: int = 0,
) -> tuple[Pool, SampleTruth]:
    """The pool and what each of its samples is.

    Args:
        n: training-pool samples (split into train and validation), >= classes x modes.
        shape: ``[C, H, W]`` or ``[D]``.
        num_classes: >= 2.
        modes: patterns per class, >= 1; mode k (0-based) has weight ``1 / (k + 1)``.
        imbalance: largest over smallest class size, >= 1 (sizes fall geometrically).
        duplicates: share of each mode's samples that are jittered copies, in [0, 0.99].
        label_noise: share of the pool given a wrong label (uniform over the others), [0, 0.99].
        noise: per-pixel noise standard deviation, >= 0.
        test_n: clean, balanced test samples, >= num_classes.
        seed: seeds the generated data (the train/validation split follows the trial's seed).

    Returns:
        The pool (``n`` noisy-label samples, an official clean test split) and its truth.
    """
    dims = parse_shape(shape)
    num_classes = check_int(num_classes, "data.options.num_classes", minimum=2)
    modes = check_int(modes, "data.options.modes", minimum=1)
    n = check_int(n, "data.options.n", minimum=num_classes * modes)
    imbalance = check_float(imbalance, "data.options.imbalance", low=1.0)
    duplicates = check_float(duplicates, "data.options.duplicates", low=0.0, high=0.99)
    label_noise = check_float(label_noise, "data.options.label_noise", low=0.0, high=0.99)
    noise = check_float(noise, "data.options.noise", low=0.0)
    test_n = check_int(test_n, "data.options.test_n", minimum=num_classes)
    seed = check_int(seed, "data.options.seed")
    g = torch.Generator().manual_seed(seed)

    means = class_means(
        num_classes * modes, dims, g
    )  # pattern of (class c, mode k): c * modes + k
    class_sizes = _class_sizes(num_classes, n, imbalance, modes)
    mode_weights = 1.0 / torch.arange(1, modes + 1, dtype=torch.float64)
    xs, ys, copies, mode_ids = [], [], [], []
    for c, size in enumerate(class_sizes.tolist()):
        for k, count in enumerate(counts_for(mode_weights, size).tolist()):
            pattern = means[c * modes + k]
            x, copy = _mode_samples(pattern, count, noise=noise, duplicates=duplicates, g=g)
            xs.append(x)
            copies.append(copy)
            ys.append(torch.full((count,), c, dtype=torch.long))
            mode_ids.append(torch.full((count,), c * modes + k, dtype=torch.long))
    order = torch.randperm(n, generator=g)
    x, y = torch.cat(xs)[order], torch.cat(ys)[order]
    true_y = y.clone()
    wrong = torch.randperm(n, generator=g)[: round(label_noise * n)]
    shift = torch.randint(1, num_classes, (len(wrong),), generator=g)
    y[wrong] = (y[wrong] + shift) % num_classes
    truth = SampleTruth(
        true_y=true_y,
        duplicate=torch.cat(copies)[order],
        mode=torch.cat(mode_ids)[order],
    )

    test_y = torch.arange(test_n) % num_classes
    test_mode = torch.randint(0, modes, (test_n,), generator=g)
    test_x = means[test_y * modes + test_mode] + noise * torch.randn(test_n, *dims, generator=g)
    return Pool(x=x, y=y, num_classes=num_classes, test_x=test_x, test_y=test_y), truth


def synthetic_hard(source: Source, **options: Any) -> Pool:
    """Imbalanced classes of Zipf-weighted modes, with near-duplicates and wrong labels.

    Every class/mode pattern is a smooth unit-scale image, as in ``synthetic``; a sample is its
    mode's pattern plus ``noise * N(0, 1)`` per pixel. With the defaults the nearest true mode
    pattern classifies 99.95% of the clean test set, the nearest class average 61%: the modes
    are far apart, and what is hard is seeing the rare ones at all. The rarest mode of the
    smallest class has 23 samples in the pool, 12 of them distinct.

    Args:
        source: unused (the data is generated).
        **options: ``data.options``, see :func:`_generate` (``n``, ``shape``, ``num_classes``,
            ``modes``, ``imbalance``, ``duplicates``, ``label_noise``, ``noise``, ``test_n``,
            ``seed``).

    Returns:
        A pool of ``n`` noisy-label samples and an official clean test split.
    """
    return _generate(**options)[0]


def synthetic_hard_pool(**options: Any) -> tuple[Pool, SampleTruth]:
    """``synthetic_hard(**options)``'s pool and what every sample of it is, in pool order (for
    benchmarks only: the true label, whether it is a near-copy, its mode)."""
    return _generate(**options)


# data.options are checked against these keywords (check_options reads the signature)
synthetic_hard.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("source", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *inspect.signature(_generate).parameters.values(),
    ],
    return_annotation=Pool,
)
DATASETS.register("synthetic_hard")(synthetic_hard)
