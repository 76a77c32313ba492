"""The GRAFT selector: Fast MaxVol subsets whose size adapts to gradient alignment.

One selection round (DESIGN.md §2, GRAFT_NOTES §5):

1. Partition the data set, by a seeded permutation of **dataset indices**, into ``n_b`` batches of
   about ``batch_size`` samples (sizes differ by at most one). Stratified (the default), the
   permutation is sorted by label first, so a batch holds one class (two at a class boundary)
   and every class gets its share of the budget: maxvol on raw pixels otherwise favours the
   classes with the most ink and starves the others (GRAFT_NOTES §5.3's per-class option).
2. One no-grad forward pass per batch gives logits, the final layer's input (the embedding) and
   so the batch's feature matrix (embedding or raw input) and gradient kernel.
3. For a few candidate subset sizes ``k_1 < ... < k_L`` (geometric, from a quarter of the
   per-batch budget to twice it), Fast MaxVol picks ``k_j`` rows of every batch's top-``r``
   singular basis, all batches at once, and the alignment of each candidate is measured.
4. Dynamic size under the budget: every batch starts at ``k_1``; batches whose alignment is still
   below ``alignment_threshold`` grow to the next size, least aligned first, while the epoch's
   budget ``floor(fraction * N)`` lasts. Well-aligned batches stay small, so the realised
   fraction can fall below the budget; it never exceeds it.
5. Optionally, least-squares weights make each batch's weighted subset gradient match its full
   gradient (clipped at 0, mean 1), as in CRAIG/GradMatch.

Before step 1, ``noise_filter`` leaves likely-mislabelled samples out of the candidates
(:mod:`graft_hpo.selection._noise`): maxvol picks a class's outliers, and a wrong label is one;
``dedup`` leaves out near-copies of other candidates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from graft_hpo._names import SELECTION_S
from graft_hpo._torch import gather_batch
from graft_hpo._torch import labels_of
from graft_hpo._torch import memory_format_for
from graft_hpo._torch import to_device
from graft_hpo.config import SelectionConfig
from graft_hpo.config import TrainConfig
from graft_hpo.selection._alignment import alignment
from graft_hpo.selection._alignment import gradient_kernel
from graft_hpo.selection._alignment import matching_weights
from graft_hpo.selection._alignment import prefix_alignment
from graft_hpo.selection._base import Selection
from graft_hpo.selection._base import Selector
from graft_hpo.selection._base import budget_of
from graft_hpo.selection._base import check_knobs
from graft_hpo.selection._batches import allocate_sizes
from graft_hpo.selection._batches import partition
from graft_hpo.selection._features import capture_embeddings
from graft_hpo.selection._features import low_rank_basis
from graft_hpo.selection._maxvol import fast_maxvol
from graft_hpo.selection._maxvol import greedy_order
from graft_hpo.selection._noise import Forwarded
from graft_hpo.selection._noise import split_suspects
from graft_hpo.selection._rank import Ranking
from graft_hpo.selection._rank import merge_by_alignment

__all__ = ["GraftSelector"]

_CHUNK = 64  # selection batches per batched linear-algebra call (bounds memory)
# samples per scoring forward pass: on CPU a small CNN's eval pass over 3,000 MNIST images
# takes 0.06 s in slices of 128-512 and 0.13 s in slices of 1,024 (cache); GPUs like them large
_FORWARD_BATCH = {"cpu": 256, "cuda": 1024}


class GraftSelector(Selector):
    """Gradient-aware Fast MaxVol selection (Jha et al., arXiv 2508.13653), as intended.

    The knobs are the pipeline's ``selection`` fields of the same names: defaults and ranges
    are :class:`~graft_hpo.config.SelectionConfig`'s.

    Args:
        fraction: budget, the share of the data set per subset epoch.
        alignment_threshold: a batch's subset grows until the cosine between its gradient and
            the batch's mean gradient reaches this.
        features: ``"embedding"`` (input of the final linear layer) or ``"raw"`` (inputs).
        rank: maximal feature rank per batch; None uses the subset size (square maxvol).
        batch_size: samples per selection batch (the default: ``train.batch_size``'s).
        stratify: partition each class on its own (see :func:`partition`), so every class
            gets its share of the budget.
        weighted: return least-squares gradient-matching weights.
        maxvol_tol: maxvol swap tolerance.
        levels: number of candidate subset sizes per batch, >= 1 (not a pipeline knob).
        pool: score only a uniformly drawn pool of ``pool`` times the budget, split into
            batches as the whole data set would be; None scores the whole data set.
        noise_filter: ``"knn"`` (default) leaves out the candidates most of whose embedding
            neighbours have another label, ``"chance"`` those the model rates below chance,
            ``"misfit"`` those it puts in another class (at most half a class each:
            :func:`~graft_hpo.selection._noise.misfits`); ``"none"`` keeps all.
        dedup: then leave out each kept candidate with an earlier one (lower dataset index) of
            its label at class-centred embedding cosine >= this, in (0, 1]; None keeps all.
    """

    name = "graft"

    def __init__(
        self,
        *,
        fraction: float = SelectionConfig.fraction,
        alignment_threshold: float = SelectionConfig.alignment_threshold,
        features: str = SelectionConfig.features,
        rank: int | None = SelectionConfig.rank,
        batch_size: int = TrainConfig.batch_size,
        stratify: bool = SelectionConfig.stratify,
        weighted: bool = SelectionConfig.weighted,
        maxvol_tol: float = SelectionConfig.maxvol_tol,
        levels: int = 6,
        pool: float | None = SelectionConfig.pool,
        noise_filter: str = SelectionConfig.noise_filter,
        dedup: float | None = SelectionConfig.dedup,
    ) -> None:
        check_knobs(
            {
                "selection.fraction": fraction,
                "selection.alignment_threshold": alignment_threshold,
                "selection.features": features,
                "selection.rank": rank,
                "selection.batch_size": batch_size,
                "selection.maxvol_tol": maxvol_tol,
                "selection.pool": pool,
                "selection.noise_filter": noise_filter,
                "selection.dedup": dedup,
                "selection.stratify": stratify,
                "selection.weighted": weighted,
            },
            errors=[f"levels must be >= 1; got {levels!r}"] if levels < 1 else [],
        )
        self.fraction = fraction
        self.alignment_threshold = alignment_threshold
        self.features = features
        self.rank = rank
        self.batch_size = batch_size
        self.stratify = stratify
        self.weighted = weighted
        self.maxvol_tol = maxvol_tol
        self.levels = levels
        self.pool = pool
        self.noise_filter = noise_filter
        self.dedup = dedup
        self._labels: tuple[Dataset[Any], torch.Tensor] | None = None  # (data set, its labels)

    @classmethod
    def from_config(
        cls, selection: SelectionConfig, train: TrainConfig, **extra: Any
    ) -> GraftSelector:
        """The pipeline's GRAFT: ``selection``'s knobs; selection batches of
        ``train.batch_size`` samples unless ``selection.batch_size`` says otherwise."""
        batch_size = selection.batch_size or train.batch_size
        return super().from_config(selection, train, **{"batch_size": batch_size, **extra})

    def candidate_sizes(self, batch_size: int, per_batch_budget: float) -> list[int]:
        """Ascending candidate subset sizes for batches of ``batch_size`` samples."""
        if self.levels == 1:  # fixed-size GRAFT: every batch gets its share of the budget
            return [min(batch_size, max(1, math.floor(per_batch_budget)))]
        lo = max(1, math.floor(per_batch_budget / 4))
        hi = min(batch_size, max(lo, math.ceil(2 * per_batch_budget)))
        if hi == lo:
            return [lo]
        ratio = (hi / lo) ** (1.0 / (self.levels - 1))
        return sorted({min(hi, round(lo * ratio**j)) for j in range(self.levels)})

    def _labels_of(self, dataset: Dataset[Any]) -> torch.Tensor:
        """``labels_of(dataset)``, read once per data set rather than once per round: a data set
        that declares no ``targets`` or ``tensors`` is read item by item."""
        if self._labels is None or self._labels[0] is not dataset:
            self._labels = (dataset, labels_of(dataset))
        return self._labels[1]

    def select(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Selection:
        start = time.perf_counter()
        n = len(dataset)  # type: ignore[arg-type]
        budget = budget_of(self.fraction, n)
        if budget >= n:
            return Selection(torch.arange(n), None, 1.0, {SELECTION_S: 0.0})
        if device is None:
            device = next(model.parameters()).device
        labels = self._labels_of(dataset) if self.stratify else None
        candidates = None
        if self.pool is not None and math.ceil(self.pool * budget) < n:
            # score a random pool of `pool` times the budget: the round's cost is the scoring
            # pass, so it shrinks by n / pool_size
            candidates = torch.randperm(n, generator=generator)[: math.ceil(self.pool * budget)]
        kept, _, forwarded = self._filter(model, dataset, candidates, device)
        batches = self._batches(n, candidates if kept is None else kept, labels, generator)
        sizes = self.candidate_sizes(len(batches[-1]), budget / len(batches))
        align, picks, kernels = self._score(model, dataset, batches, sizes, device, forwarded)
        level = allocate_sizes(align, sizes, budget, self.alignment_threshold)

        chosen_idx, chosen_w, chosen_align = [], [], []
        for b, j in enumerate(level.tolist()):
            if j < 0:
                continue
            local = picks[j][b]
            chosen_idx.append(batches[b][local])
            chosen_align.append(float(align[b, j]))
            if self.weighted:
                chosen_w.append(matching_weights(kernels[b], local))
        indices = torch.cat(chosen_idx)
        order = indices.argsort()
        weights = torch.cat(chosen_w)[order].float() if self.weighted else None
        stats = {
            SELECTION_S: time.perf_counter() - start,
            "alignment_mean": sum(chosen_align) / len(chosen_align),
            "alignment_min": min(chosen_align),
            "aligned_batches": sum(a >= self.alignment_threshold for a in chosen_align)
            / len(batches),
            "budget": float(budget),
        }
        if kept is not None:
            stats["filtered"] = 1.0 - len(kept) / (n if candidates is None else len(candidates))
        return Selection(indices[order], weights, len(indices) / n, stats)

    @torch.inference_mode()
    def rank_dataset(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Ranking:
        """Rank every sample of ``dataset`` so that each budget's subset is a prefix.

        One scoring pass, as in :meth:`select`, but instead of one subset per budget each
        batch is ordered by Fast MaxVol without swaps (greedy, hence nested: its first ``k``
        rows are DEIM's on the top-``k`` basis, then rectangular-maxvol growth), and batches
        are interleaved least-aligned first (:func:`merge_by_alignment`). ``fraction`` and
        ``alignment_threshold`` play no part: the trials apply theirs to the ranking.
        The samples ``noise_filter`` and ``dedup`` leave out come last (split_suspects' order).
        """
        start = time.perf_counter()
        if device is None:
            device = next(model.parameters()).device
        n = len(dataset)  # type: ignore[arg-type]
        labels = self._labels_of(dataset) if self.stratify else None
        kept, left_out, forwarded = self._filter(model, dataset, None, device)
        batches = self._batches(n, kept, labels, generator)
        local_order: list[torch.Tensor] = []
        align: list[torch.Tensor] = []
        scored = self._scored_chunks(model, dataset, batches, device, None, forwarded)
        for _chunk, V, K in scored:
            order = greedy_order(V, V.shape[1])
            local_order.extend(order.cpu())
            align.extend(prefix_alignment(K, order).cpu())
        ranking = merge_by_alignment(batches, local_order, align, tail=left_out)
        if left_out is not None:
            ranking.stats["filtered"] = len(left_out) / n
        ranking.stats.update(selection_s=time.perf_counter() - start, batches=len(batches))
        return ranking

    def _batches(
        self,
        n: int,
        candidates: torch.Tensor | None,
        labels: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> list[torch.Tensor]:
        """:func:`partition` of ``candidates`` (dataset indices; None: all ``n`` samples)."""
        if candidates is None:
            return partition(n, self.batch_size, labels=labels, generator=generator)
        local = labels[candidates] if labels is not None else None
        parts = partition(len(candidates), self.batch_size, labels=local, generator=generator)
        return [candidates[p] for p in parts]

    @torch.inference_mode()
    def _filter(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        candidates: torch.Tensor | None,
        device: torch.device | str,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, Forwarded | None]:
        """:func:`split_suspects` of ``candidates`` (None: all) and the forward pass that
        told them apart, for scoring to reuse; all None without a filter or ``dedup``."""
        if self.noise_filter == "none" and self.dedup is None:
            return None, None, None
        if candidates is None:
            candidates = torch.arange(len(dataset))  # type: ignore[arg-type]
        feats, logits, embeds, targets = self._forward(model, dataset, [candidates], device)
        rule, dedup = self.noise_filter, self.dedup
        kept, left_out = split_suspects(candidates, logits, targets, rule, embeds, dedup)
        n, held = len(dataset), None if self.features == "raw" else feats  # type: ignore[arg-type]
        return kept, left_out, Forwarded.of(n, candidates, held, logits, embeds, targets)

    @torch.inference_mode()
    def _score(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        batches: list[torch.Tensor],
        sizes: list[int],
        device: torch.device | str,
        forwarded: Forwarded | None,
    ) -> tuple[torch.Tensor, list[list[torch.Tensor]], list[torch.Tensor]]:
        """Candidate subsets of every batch and their alignments.

        Returns:
            ``align`` (n_b, L) float64; ``picks[j][b]`` the batch-local rows of candidate ``j``
            of batch ``b``; the batches' gradient kernels (only kept when ``weighted``).
        """
        rank_cap = min(max(sizes), self.rank or max(sizes))
        align_rows: list[torch.Tensor] = []
        picks: list[list[torch.Tensor]] = [[] for _ in sizes]
        kernels: list[torch.Tensor] = []
        for chunk, V, K in self._scored_chunks(
            model, dataset, batches, device, rank_cap, forwarded
        ):
            masks = K.new_zeros(len(chunk), len(sizes), V.shape[1])
            for j, k in enumerate(sizes):
                idx = fast_maxvol(V[..., : min(k, V.shape[-1])], k, tol=self.maxvol_tol)
                masks[:, j].scatter_(1, idx, 1.0)
                picks[j].extend(idx.cpu())
            align_rows.append(alignment(K, masks).cpu())
            if self.weighted:
                kernels.extend(K.cpu())
        return torch.cat(align_rows), picks, kernels

    def _scored_chunks(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        batches: list[torch.Tensor],
        device: torch.device | str,
        rank_cap: int | None,
        forwarded: Forwarded | None = None,
    ) -> Iterator[tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]]:
        """The scoring pass, in chunks of up to ``_CHUNK`` equal-size batches, in batch order.

        Yields:
            ``(chunk, V, K)``: the chunk's batches; their top-``r`` feature bases ``V``
            (c, B, r), with ``r = rank_cap`` or, when None, ``min(B, rank)``; and their gradient
            kernels ``K`` (c, B, B). tensor_split makes at most two batch sizes, the larger
            first, so equal sizes stack into one batched call and the order is kept.
            The forward pass is ``forwarded``'s where given (the noise filter's).
        """
        groups: dict[int, list[torch.Tensor]] = {}
        for batch in batches:
            groups.setdefault(len(batch), []).append(batch)
        for size, group in groups.items():
            rank = rank_cap if rank_cap is not None else min(size, self.rank or size)
            for c in range(0, len(group), _CHUNK):
                chunk = group[c : c + _CHUNK]
                if forwarded is None:
                    feats, logits, embeds, targets = self._forward(model, dataset, chunk, device)
                else:
                    feats, logits, embeds, targets = forwarded.take(dataset, chunk, device)
                shape = (len(chunk), size)
                V = low_rank_basis(feats.view(*shape, -1), rank)
                K = gradient_kernel(
                    logits.view(*shape, -1), targets.view(shape), embeds.view(*shape, -1)
                )
                yield chunk, V, K

    def _forward(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        chunk: list[torch.Tensor],
        device: torch.device | str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features, logits, embeddings and labels of the samples of ``chunk``, in order.

        The forward pass is in eval mode (scoring must not move BatchNorm statistics) and in
        slices of ``_FORWARD_BATCH`` samples regardless of the selection batch size: in eval
        mode samples are independent, and large slices run faster. On CUDA it runs in bf16
        autocast, like training (the model is trained in bf16 there); everything after it
        (basis, kernel, maxvol, alignment) is float32 or float64.
        """
        was_training = model.training
        model.eval()
        feats, logits, embeds, targets = [], [], [], []
        on_cuda = torch.device(device).type == "cuda"
        layout = memory_format_for(device)
        precision = torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda)
        try:
            with capture_embeddings(model) as captured, precision:
                slice_size = _FORWARD_BATCH.get(torch.device(device).type, 256)
                for index in torch.cat(chunk).split(slice_size):
                    x, y = gather_batch(dataset, index)
                    x, y = to_device(x, device, layout), y.to(device, non_blocking=True)
                    logits.append(model(x).float())
                    embeds.append(captured.pop().float())
                    feats.append(embeds[-1] if self.features == "embedding" else x.flatten(1))
                    targets.append(y)
        finally:
            model.train(was_training)
        return torch.cat(feats).float(), torch.cat(logits), torch.cat(embeds), torch.cat(targets)
