"""Keep likely-mislabelled samples out of GRAFT's candidates (``selection.noise_filter``).

Why (measured, docs/noise.md): within a class, a sample with a wrong label is an outlier of the
class's gradient and feature space, exactly what Fast MaxVol picks first and what the
alignment criterion then has to match. At budget 0.2, GRAFT's first subsets held 24.4% wrong
labels on ``synthetic_hard`` (10% in the pool, random's 10.1%) and 54% / 70% on digits with 20% /
40% symmetric noise (random's 20% / 40%).

Before a round, one forward pass of the current model (or the sweep's proxy) over the
candidates, which the round's scoring then reuses, flags the samples whose label the model does
not believe: ``chance``, the label has less than chance probability ``1 / C``; ``misfit``,
the predicted class is another; ``knn`` (the default), fewer than 2 of the sample's 10 nearest
neighbours in the model's embedding share its label (a deep k-NN filter, Bahri et al., ICML
2020: a weak model's embedding already groups a class, where its head still errs). Per class,
highest loss first, at most half of the class. What is left out follows the data: ``chance``
1.5% of clean digits, 18% / 30% with 20% / 40% noise; ``misfit`` 4.7%, 26%, 43%, but also 29%
of clean MNIST-5k after one warm-up epoch (a weak model's honest mistakes). Nothing is left out
while the model fits no more than twice chance of the labels. CRUST, RHO-LOSS and CCS likewise
keep learnable samples and leave out those a model cannot fit.

``selection.dedup`` (a cosine-similarity threshold, off by default) then leaves out the
semantic near-duplicates among the kept candidates (:func:`near_duplicates`, SemDeDup's rule,
Abbas et al., 2023): maxvol spans each selection batch, but a copy and its original often sit
in different batches, so both get picked and the budget spent on the copy buys nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from graft_hpo._torch import gather_batch

__all__ = [
    "MAX_CLASS_SHARE",
    "Forwarded",
    "knn_outliers",
    "misfits",
    "near_duplicates",
    "split_suspects",
]

MAX_CLASS_SHARE = 0.5  # never leave out more than this share of a class's candidates
KNN_K = 10  # rule "knn": the nearest neighbours that vote on a sample's label
KNN_MIN_AGREE = 2  # ... and fewer of them than this sharing it makes the sample a suspect
KNN_REFERENCES = 8192  # neighbours are looked for among at most this many candidates
_KNN_CHUNK = 1024  # rows of the similarity matrix at a time


def knn_outliers(
    embeds: torch.Tensor,
    labels: torch.Tensor,
    *,
    k: int = KNN_K,
    min_agree: int = KNN_MIN_AGREE,
) -> torch.Tensor:
    """The samples whose label fewer than ``min_agree`` of their ``k`` nearest neighbours share.

    Neighbours by cosine similarity of ``embeds``, among the samples themselves (each sample
    excluded from its own), or, beyond :data:`KNN_REFERENCES` samples, among that many evenly
    spaced ones, sample ``floor(j m / KNN_REFERENCES)`` for each ``j`` (the cost stays
    ``m x 8192`` dot products). Runs on ``embeds``' device. Fewer references measured worse:
    at 2,048 of synthetic_hard's 6,400 candidates the vote's precision against the wrong
    labels fell from 0.80-0.89 to 0.71-0.85 (a rare mode's members then find too few
    references of their own label; ``benchmarks/results/knn_probe.md``).

    Args:
        embeds: ``(m, E)`` float embeddings.
        labels: ``(m,)`` int64 labels.

    Returns:
        ``(m,)`` bool on the CPU; all False when there are no more than ``k`` samples.

    Example:
        >>> embeds = torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4)
        >>> knn_outliers(embeds, torch.tensor([0, 0, 0, 1, 1, 1, 1, 1]), k=3).tolist()
        [False, False, False, True, False, False, False, False]
    """
    m = labels.numel()
    out = torch.zeros(m, dtype=torch.bool)
    if m <= k:
        return out
    feats = F.normalize(embeds.float(), dim=1)
    labels = labels.to(feats.device)
    r = min(m, KNN_REFERENCES)
    ref = torch.arange(r, device=feats.device) * m // r  # evenly spaced, distinct
    column = torch.full((m,), -1, dtype=torch.long, device=feats.device)
    column[ref] = torch.arange(r, device=feats.device)  # a reference's column, else -1
    ref_feats_t = feats[ref].T.contiguous()
    k = min(k, r - 1)
    for start in range(0, m, _KNN_CHUNK):
        rows = torch.arange(start, min(start + _KNN_CHUNK, m), device=feats.device)
        sim = feats[rows] @ ref_feats_t
        own = (column[rows] >= 0).nonzero().squeeze(1)  # rows that are references too
        sim[own, column[rows[own]]] = -math.inf  # not its own neighbour
        near = ref[sim.topk(k, dim=1).indices]
        agree = (labels[near] == labels[rows, None]).sum(1)
        out[start : start + len(rows)] = (agree < min_agree).cpu()
    return out


def near_duplicates(
    embeds: torch.Tensor,
    labels: torch.Tensor,
    threshold: float,
    *,
    max_share: float = MAX_CLASS_SHARE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples with an earlier sample of their label at within-class cosine >= ``threshold``.

    SemDeDup's rule (Abbas et al., 2023) within each label: sample ``i`` is a duplicate when
    some ``j < i`` (position in ``embeds``) with ``labels[j] == labels[i]`` has
    ``cos(e_i - mu, e_j - mu) >= threshold``, ``mu`` the mean embedding of the label's samples;
    the first of every group of mutual near-copies has no earlier one and stays. At most
    ``max_share`` of a class (rounded down), the most similar first. Exact: every pair of a
    class, in chunks (``sum_c m_c^2`` dot products). Centred, because a trained network's
    embeddings of one class share a large common part (post-ReLU, all in one orthant): the
    plain cosine of two distinct clean MNIST-5k digits of a class exceeded 0.998 for 8-10% of
    the candidates after one epoch, the centred one 0.99 for 0.2%, while jittered copies stay
    above 0.99 either way (``benchmarks/results/dedup_probe.md``). A class of one or two
    samples, or of identical ones, has no spread to centre: nothing of it is flagged.

    Args:
        embeds: ``(m, E)`` float embeddings (any device).
        labels: ``(m,)`` int64 labels.
        threshold: within-class cosine similarity in (0, 1].
        max_share: the largest share of a class to flag, in [0, 1].

    Returns:
        ``(flagged, nearest)``: ``(m,)`` bool, True for a duplicate to leave out, and ``(m,)``
        float64, each sample's highest similarity to an earlier one of its label (-inf for
        none), both on the CPU.

    Example:
        >>> embeds = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.01], [-1.0, -1.0]])
        >>> near_duplicates(embeds, torch.tensor([0, 0, 0, 0]), 0.99)[0].tolist()
        [False, False, True, False]
    """
    m = labels.numel()
    nearest = torch.full((m,), -math.inf, dtype=torch.float64)
    flagged = torch.zeros(m, dtype=torch.bool)
    labels = labels.cpu()
    for c in labels.unique():
        members = (labels == c).nonzero().squeeze(1)  # ascending positions
        own = embeds[members.to(embeds.device)].float()
        own = F.normalize(own - own.mean(0), dim=1)  # a zero row stays zero: similarity 0
        for start in range(0, len(members), _KNN_CHUNK):
            stop = min(start + _KNN_CHUNK, len(members))
            sim = own[start:stop] @ own[:stop].T  # earlier columns only are needed
            later = torch.arange(stop, device=sim.device) >= torch.arange(
                start, stop, device=sim.device
            ).unsqueeze(1)
            sim[later] = -math.inf  # itself and the samples after it
            nearest[members[start:stop]] = sim.max(1).values.double().cpu()
        dup = members[nearest[members] >= threshold]
        cap = int(max_share * members.numel())
        flagged[dup[nearest[dup].argsort(descending=True, stable=True)[:cap]]] = True
    return flagged, nearest


def misfits(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    rule: str = "chance",
    max_share: float = MAX_CLASS_SHARE,
    embeds: torch.Tensor | None = None,
) -> torch.Tensor:
    """The samples whose label the model does not believe: likely mislabelled.

    ``rule="chance"``: the model gives the label less than chance probability, ``1 / C``
    (it is confident the sample belongs elsewhere). ``rule="misfit"``: the model's arg-max
    class is not the label (also a weak model's honest mistakes: measured on MNIST-5k after one
    epoch, 32% of the clean samples). ``rule="knn"``: :func:`knn_outliers` of ``embeds``
    (its neighbours' labels disagree). Per class, highest cross-entropy first, at most
    ``max_share`` of the class (rounded down). None at all when the model agrees with no more
    of the labels than twice chance, ``2 / C`` (for few classes, halfway from chance to all,
    ``(1 + 1 / C) / 2``): it then knows nothing of the labels yet.

    Args:
        logits: ``(m, C)`` float logits.
        labels: ``(m,)`` int64 labels.
        rule: ``"chance"``, ``"misfit"`` or ``"knn"``.
        max_share: the largest share of a class to flag, in [0, 1].
        embeds: ``(m, E)`` embeddings, for ``rule="knn"`` (on any device).

    Returns:
        ``(m,)`` bool, True for a sample to leave out.

    Example:
        >>> logits = torch.tensor([[3.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 4.0], [1.0, 0.0]])
        >>> misfits(logits, torch.tensor([0, 0, 1, 1, 1]), rule="misfit").tolist()
        [False, False, False, False, True]
    """
    num_classes = logits.shape[1]
    log_p = logits.float().log_softmax(1).gather(1, labels[:, None]).squeeze(1)
    wrong = logits.argmax(1) != labels
    if rule == "knn":
        if embeds is None:
            raise ValueError("noise_filter 'knn' needs the embeddings; got none")
        suspect = knn_outliers(embeds, labels)
    elif rule in ("misfit", "chance"):
        suspect = wrong if rule == "misfit" else log_p < -math.log(num_classes)
    else:
        raise ValueError(f"noise_filter must be 'chance', 'misfit' or 'knn' here; got {rule!r}")
    flagged = torch.zeros_like(wrong)
    floor = min(2.0 / num_classes, (1.0 + 1.0 / num_classes) / 2)
    if labels.numel() == 0 or 1.0 - wrong.double().mean() <= floor:
        return flagged
    loss = F.cross_entropy(logits.float(), labels, reduction="none")
    for c in labels.unique():
        members = (labels == c).nonzero().squeeze(1)
        suspects = members[suspect[members]]
        cap = int(max_share * members.numel())
        flagged[suspects[loss[suspects].argsort(descending=True)[:cap]]] = True
    return flagged


def split_suspects(
    candidates: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    rule: str,
    embeds: torch.Tensor | None = None,
    dedup: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept, left_out)``: ``candidates`` (``(m,)`` dataset indices, with their ``(m, C)``
    logits, ``(m,)`` labels and ``(m, E)`` embeddings) split by :func:`misfits` with ``rule``
    (``"none"``: nobody), then, with ``dedup``, by :func:`near_duplicates` of the kept ones at
    that threshold, earlier meaning a lower dataset index. ``kept`` keeps the candidates' order;
    ``left_out`` holds the duplicates first, least similar first, then the suspects, least
    suspect (lowest loss) first: clean copies are worth more than likely wrong labels."""
    logits, labels = logits.float().cpu(), labels.cpu()
    if rule == "none":
        flagged = torch.zeros(labels.numel(), dtype=torch.bool)
    else:
        flagged = misfits(logits, labels, rule=rule, embeds=embeds)
    out = flagged.nonzero().squeeze(1)
    loss = F.cross_entropy(logits[out], labels[out], reduction="none")
    suspects = candidates[out[loss.argsort()]]
    if dedup is None:
        return candidates[~flagged], suspects
    if embeds is None:
        raise ValueError("selection.dedup needs the embeddings; got none")
    rest = (~flagged).nonzero().squeeze(1)
    by_index = rest[candidates[rest].argsort()]  # the lower dataset index is the earlier
    dup, nearest = near_duplicates(embeds[by_index.to(embeds.device)], labels[by_index], dedup)
    dropped = torch.zeros_like(flagged)
    dropped[by_index[dup]] = True
    copies = by_index[dup][nearest[dup].argsort(stable=True)]
    return candidates[~(flagged | dropped)], torch.cat([candidates[copies], suspects])


@dataclass(frozen=True)
class Forwarded:
    """One forward pass over some samples, looked up by dataset index, so that the filter's
    pass serves the scoring too (the pass is most of a round's cost on the CPU).

    Attributes:
        position: ``(n,)`` int64, the row of each dataset index (-1: not forwarded).
        feats: ``(m, D)`` selection features, or None when they are the raw inputs (re-read
            from the data set rather than held twice).
        logits: ``(m, C)``; embeds: ``(m, E)``; targets: ``(m,)``, on the scoring device.
    """

    position: torch.Tensor
    feats: torch.Tensor | None
    logits: torch.Tensor
    embeds: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def of(
        cls,
        n: int,
        index: torch.Tensor,
        feats: torch.Tensor | None,
        logits: torch.Tensor,
        embeds: torch.Tensor,
        targets: torch.Tensor,
    ) -> Forwarded:
        """The outputs of the samples ``index`` (``(m,)`` of ``range(n)``), in that order."""
        position = torch.full((n,), -1, dtype=torch.long)
        position[index] = torch.arange(len(index))
        return cls(position, feats, logits, embeds, targets)

    def take(
        self, dataset: Dataset[Any], chunk: list[torch.Tensor], device: torch.device | str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(feats, logits, embeds, targets)`` of the samples of ``chunk``, in order."""
        index = torch.cat(chunk)
        rows = self.position[index].to(self.logits.device)
        if self.feats is not None:
            feats = self.feats[rows]
        else:
            x, _ = gather_batch(dataset, index)
            feats = x.to(device).flatten(1).float()
        return feats, self.logits[rows], self.embeds[rows], self.targets[rows]
