"""The forward pass a GRAFT round reads: its own, or the training pass of the epoch before it.

A round needs every candidate's logits, embedding (the input of the final linear layer) and
label. :func:`eval_pass` computes them in eval mode; it is most of a round's cost on the CPU
(docs/noise.md). With ``selection.reuse_warmup`` the first round reads them from the last
warm-up epoch instead, which passed every sample forward anyway: the training loop hands each
step's outputs to :meth:`~graft_hpo.selection.Selector.record_outputs`, and a
:class:`TrainingPass` keeps them by dataset index. Those outputs are the training pass's: train
mode (BatchNorm on batch statistics, dropout), a model that moved during the epoch, and the
training set's inputs, so the loop records only where the training set is the one selection
scores (no augmentation).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from graft_hpo._torch import gather_batch
from graft_hpo._torch import memory_format_for
from graft_hpo._torch import to_device
from graft_hpo.selection._features import capture_embeddings
from graft_hpo.selection._noise import Forwarded

__all__ = ["TrainingPass", "eval_pass"]

# samples per scoring forward pass: on CPU a small CNN's eval pass over 3,000 MNIST images
# takes 0.06 s in slices of 128-512 and 0.13 s in slices of 1,024 (cache); GPUs like them large
_FORWARD_BATCH = {"cpu": 256, "cuda": 1024}


def eval_pass(
    model: nn.Module,
    dataset: Dataset[Any],
    chunk: list[torch.Tensor],
    device: torch.device | str,
    *,
    raw: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features (the flattened inputs if ``raw``, else the embeddings), logits, embeddings and
    labels of the samples of ``chunk``, in order.

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
                feats.append(x.flatten(1) if raw else embeds[-1])
                targets.append(y)
    finally:
        model.train(was_training)
    return torch.cat(feats).float(), torch.cat(logits), torch.cat(embeds), torch.cat(targets)


class TrainingPass:
    """The outputs of one training epoch's forward passes, by dataset index.

    :meth:`add` is called once per training step, on the device, without a host
    synchronisation (the step's dataset indices live on the host); :meth:`forwarded` hands them
    to a round as the :class:`Forwarded` its own pass would have made.
    """

    def __init__(self) -> None:
        self._parts: list[tuple[torch.Tensor, ...]] = []

    def add(
        self, index: torch.Tensor, logits: torch.Tensor, embeds: torch.Tensor, y: torch.Tensor
    ) -> None:
        """Keep the step's ``(b,)`` host ``index``, ``(b, C)`` ``logits``, ``(b, E)``
        ``embeds`` and ``(b,)`` labels ``y`` (detached; converted to float when read)."""
        self._parts.append((index.cpu(), logits.detach(), embeds.detach(), y.detach()))

    def forwarded(self, n: int, candidates: torch.Tensor | None, *, raw: bool) -> Forwarded | None:
        """The recorded outputs of ``candidates`` (None: all ``n`` samples), or None when one
        of them was not recorded (the pass was not over every candidate). The features are
        the embeddings, or, if ``raw``, re-read from the data set (the un-augmented inputs)."""
        if not self._parts:
            return None
        parts = zip(*self._parts, strict=True)
        index, logits, embeds, targets = (torch.cat(part) for part in parts)
        found = Forwarded.of(n, index, None, logits.float(), embeds.float(), targets.long())
        wanted = torch.arange(n) if candidates is None else candidates
        if bool((found.position[wanted] < 0).any()):
            return None
        return dataclasses.replace(found, feats=None if raw else found.embeds)
