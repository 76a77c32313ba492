"""Data on a CUDA device: gather and augmentation keep working there (skipped without CUDA)."""

from __future__ import annotations

import pytest
import torch

from graft_hpo.config import DataConfig
from graft_hpo.config import ModelConfig
from graft_hpo.data import CropFlipDataset
from graft_hpo.data import InMemoryDataset
from graft_hpo.data import gather
from graft_hpo.data import load_data
from graft_hpo.data._datasets import crop_flip
from graft_hpo.models import build_model
from graft_hpo.models import classifier_layer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_gather_and_crop_flip_on_cuda_match_cpu():
    b = load_data(DataConfig(name="synthetic", options={"n": 512}), seed=0)
    x, y = b.train_eval.tensors
    on_gpu = InMemoryDataset(x.cuda(), y.cuda())
    index = torch.randperm(len(y))[:128]
    gx, gy = gather(on_gpu, index)
    assert gx.is_cuda and torch.equal(gx.cpu(), x[index]) and torch.equal(gy.cpu(), y[index])
    fill = torch.zeros(3)
    aug = CropFlipDataset(on_gpu, padding=4, fill=fill)
    g = torch.Generator(device="cuda").manual_seed(0)
    out, _ = gather(aug, index, generator=g)
    g2 = torch.Generator(device="cuda").manual_seed(0)
    ref = crop_flip(x[index].cuda(), padding=4, fill=fill, generator=g2)
    assert out.is_cuda and torch.equal(out, ref)


@pytest.mark.parametrize("name", ["cnn", "mlp", "resnet18"])
def test_models_train_a_step_on_cuda(name):
    model = build_model(ModelConfig(name), input_shape=(3, 32, 32), num_classes=10).cuda()
    x = torch.randn(64, 3, 32, 32, device="cuda")
    y = torch.randint(0, 10, (64,), device="cuda")
    seen = {}
    classifier_layer(model).register_forward_hook(lambda m, i, o: seen.update(o=o))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss) and seen["o"].shape == (64, 10)


def test_placed_augmented_data_is_gathered_and_augmented_on_the_device():
    from graft_hpo._torch import iter_batches
    from graft_hpo.data import device_budget_bytes
    from graft_hpo.data import place_on_device

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 8, 8, generator=g), torch.arange(64) % 4
    base = InMemoryDataset(x, y)
    aug = CropFlipDataset(base, padding=2, fill=torch.zeros(3))
    cuda = torch.device("cuda")
    m_aug, m_base = place_on_device([aug, base], cuda, max_bytes=device_budget_bytes(cuda, 0.25))
    assert m_aug.base is m_base and m_base.x.is_cuda and m_aug.fill.is_cuda
    order = torch.randperm(64, generator=g)
    torch.cuda.manual_seed(3)  # no generator given: the device's own draws the crops
    (bx, by, index), *_ = iter_batches(m_aug, order, 16)
    torch.cuda.manual_seed(3)
    ref = crop_flip(x[order[:16]].cuda(), padding=2, fill=torch.zeros(3))
    assert bx.is_cuda and torch.equal(bx, ref)
    assert torch.equal(by.cpu(), y[order[:16]]) and index.device.type == "cpu"
