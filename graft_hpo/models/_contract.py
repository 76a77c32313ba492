"""A built model checked against the data it will train on, before anything is written.

graft-hpo trains with cross-entropy on the model's raw outputs, so a model must map a batch
``x`` of shape ``(N, *input_shape)`` to logits of shape ``(N, num_classes)``, in the dtype of
the inputs. A model whose head already normalises (softmax, log-softmax) is refused: on top of
cross-entropy's own log-softmax, a softmax head trains slowly to worse accuracy.
"""

from __future__ import annotations

import torch
from torch import nn

from graft_hpo.exceptions import ConfigError

__all__ = ["check_model_outputs"]

_ATOL = 1e-4


def _head(out: torch.Tensor) -> str | None:
    """``"softmax"``/``"log-softmax"`` when every row already is a (log-)distribution."""
    if not bool(torch.isfinite(out).all()) or out.shape[1] < 2:
        return None
    ones = torch.ones(out.shape[0], dtype=out.dtype)
    if bool((out >= 0).all()) and torch.allclose(out.sum(dim=1), ones, atol=_ATOL):
        return "softmax"
    if bool((out <= 0).all()) and torch.allclose(out.exp().sum(dim=1), ones, atol=_ATOL):
        return "log-softmax"
    return None


def check_model_outputs(
    model: nn.Module, x: torch.Tensor, *, num_classes: int, model_key: str, data_key: str
) -> None:
    """Run ``model`` once on ``x`` (eval mode, no gradients) and check what it returns.

    Args:
        model: the built model, on the CPU.
        x: ``(N, *input_shape)`` inputs from the training set.
        num_classes: C, from the data.
        model_key: how messages name the model (``"model.name 'pkg.mod:factory'"``).
        data_key: how messages name the data (``"data.name 'pkg.mod:function'"``).

    Raises:
        ConfigError: inputs the model's parameters cannot take, a forward pass that raises,
            outputs that are not ``(N, C)`` floating logits, or a normalising head.
    """
    param = next(model.parameters(), None)
    if param is not None and param.dtype.is_floating_point and x.dtype != param.dtype:
        raise ConfigError(
            f"{data_key} must yield inputs x in the dtype of the parameters of {model_key} "
            f"({param.dtype}); got {x.dtype} (convert with torch.as_tensor(x, "
            f"dtype={param.dtype}))"
        )
    shape = tuple(x.shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as exc:
        raise ConfigError(
            f"{model_key} must take a batch of shape {shape} ({x.dtype}) from {data_key}; "
            f"its forward pass raised {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        model.train(was_training)
    expected = (shape[0], num_classes)
    if not isinstance(out, torch.Tensor) or not out.dtype.is_floating_point:
        found = f"{type(out).__name__}" + (f" of {out.dtype}" if hasattr(out, "dtype") else "")
        raise ConfigError(f"{model_key} must return float logits of shape {expected}; got {found}")
    if tuple(out.shape) != expected:
        raise ConfigError(
            f"{model_key} must return logits of shape (N, num_classes) = {expected} for a batch "
            f"of shape {shape}; got {tuple(out.shape)}"
        )
    head = _head(out.float())
    if head is not None:
        layer, sums = ("Softmax", "sums") if head == "softmax" else ("LogSoftmax", "exp-sums")
        raise ConfigError(
            f"{model_key} must return raw logits (the loss applies log-softmax itself); got "
            f"outputs that are already a {head} (every row {sums} to 1): remove the final {layer}"
        )
