"""``data.label_noise`` and :func:`training_truth`: symmetric, seeded, train and val only."""

from __future__ import annotations

import pytest
import torch

from graft_hpo.config import DataConfig
from graft_hpo.data import load_data
from graft_hpo.data import training_truth
from graft_hpo.data._split import flip_labels
from graft_hpo.exceptions import ConfigError

HARD = {"n": 2000, "shape": [6], "num_classes": 4, "modes": 3, "test_n": 400, "noise": 0.05}


def test_flip_labels_mislabels_exactly_the_share_with_other_classes():
    y = torch.arange(1000) % 5
    noisy = flip_labels(y, 0.3, 5, generator=torch.Generator().manual_seed(3))
    wrong = noisy != y
    assert int(wrong.sum()) == 300 and torch.equal(y, torch.arange(1000) % 5)  # not in place
    assert ((noisy >= 0) & (noisy < 5)).all()
    # uniform over the four other classes: each wrong label shift 1..4 about a quarter
    shifts = torch.bincount(((noisy - y) % 5)[wrong], minlength=5)
    assert shifts[0] == 0 and (shifts[1:] > 45).all()
    again = flip_labels(y, 0.3, 5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(noisy, again)


def test_label_noise_touches_train_and_val_only_and_keeps_the_samples():
    clean = load_data(DataConfig(name="digits"), seed=1)
    noisy = load_data(DataConfig(name="digits", label_noise=0.2), seed=1)
    for part in ("train_eval", "val"):
        a, b = getattr(clean, part), getattr(noisy, part)
        assert torch.equal(a.x, b.x)  # the same split and samples: runs pair up
        assert int((a.y != b.y).sum()) == round(0.2 * len(a.y))
    assert torch.equal(clean.test.y, noisy.test.y) and torch.equal(clean.test.x, noisy.test.x)
    assert torch.equal(noisy.train.y, noisy.train_eval.y)  # the augmented view shares labels


def test_no_label_noise_leaves_labels_as_they_were():
    default = load_data(DataConfig(name="digits"), seed=2)
    zero = load_data(DataConfig(name="digits", label_noise=0.0), seed=2)
    assert torch.equal(default.train_eval.y, zero.train_eval.y)


def test_the_noise_is_not_the_first_draw_of_a_generator_seeded_like_the_trial():
    # regression: with the trial's seed itself, a random subset of budget 0.2 drawn first
    # (warm_start_epochs=0) was exactly the 20% mislabelled samples
    bundle = load_data(DataConfig(name="digits", label_noise=0.2), seed=0)
    wrong = bundle.train_eval.y != training_truth(DataConfig(name="digits"), seed=0).true_y
    n = len(wrong)
    first = torch.randperm(n, generator=torch.Generator().manual_seed(0))[: round(0.2 * n)]
    assert float(wrong[first].float().mean()) < 0.35  # chance is 0.2


def test_training_truth_of_synthetic_hard_knows_wrong_labels_copies_and_modes():
    cfg = DataConfig(name="synthetic_hard", options={**HARD, "label_noise": 0.1})
    bundle = load_data(cfg, seed=0)
    truth = training_truth(cfg, seed=0)
    wrong = bundle.train_eval.y != truth.true_y
    assert truth.duplicate is not None and truth.mode is not None
    assert len(truth.true_y) == len(bundle.train_eval)
    assert 0.07 < float(wrong.float().mean()) < 0.13
    assert 0.4 < float(truth.duplicate.float().mean()) < 0.6
    assert torch.equal(truth.mode // 3, truth.true_y)  # mode c * modes + k belongs to class c
    # low noise: the nearest mode pattern is the truth, so a copy sits next to its original
    x = bundle.train_eval.x
    copies = truth.duplicate.nonzero().squeeze(1)[:20]
    for i in copies.tolist():
        d = (x - x[i]).norm(dim=1)
        d[i] = float("inf")
        assert truth.mode[int(d.argmin())] == truth.mode[i]


def test_training_truth_with_injected_noise_gives_the_clean_labels():
    cfg = DataConfig(name="digits", label_noise=0.4)
    truth = training_truth(cfg, seed=0)
    clean = load_data(DataConfig(name="digits"), seed=0)
    assert torch.equal(truth.true_y, clean.train_eval.y) and truth.duplicate is None


def test_label_noise_is_refused_for_a_plugin():
    with pytest.raises(ConfigError, match=r"data\.label_noise must be 0 for a plug-in"):
        load_data(DataConfig(name="tests.plugins.toy:blobs", label_noise=0.1), seed=0)
