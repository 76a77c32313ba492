"""Every model family: output shapes, the classifier contract, options and plug-ins."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from graft_hpo.config import ModelConfig
from graft_hpo.exceptions import ConfigError
from graft_hpo.models import available_models
from graft_hpo.models import build_model
from graft_hpo.models import check_model
from graft_hpo.models import classifier_layer

IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
# Small options keep the test fast; defaults are exercised on one shape below.
CASES = [
    ("mlp", {"width": 32}, [*IMAGE_SHAPES, (20,)]),
    ("cnn", {"width": 8, "embed_dim": 16}, IMAGE_SHAPES),
    ("resnet18", {"width": 4}, IMAGE_SHAPES),
    ("resnet18", {}, [(3, 32, 32)]),
    ("cnn", {}, [(1, 28, 28)]),
    ("tests.plugins.toy:mlp", {"hidden": 8}, [(1, 8, 8), (20,)]),
    ("tests.plugins.toy:renamed", {"hidden": 8}, [(1, 8, 8)]),
    ("resnet18_tv", {}, [(3, 32, 32)]),
    ("mobilenet_v2", {"width_mult": 0.25}, [(3, 32, 32)]),
]


def _build(name: str, options: dict, shape: tuple[int, ...], classes: int = 7) -> nn.Module:
    # "resnet18" is ours; torchvision's is reachable under its own name only via the fallback,
    # so build it through the fallback directly.
    if name == "resnet18_tv":
        from graft_hpo.models._torchvision import TORCHVISION

        factory = TORCHVISION.resolve("resnet18")
        assert factory is not None
        return factory(shape, classes, **options)
    return build_model(ModelConfig(name, options), input_shape=shape, num_classes=classes)


def test_available_models():
    assert available_models() == ["cnn", "mlp", "resnet18"]
    everything = available_models(include_torchvision=True)
    assert everything[:3] == ["cnn", "mlp", "resnet18"] and "mobilenet_v2" in everything
    assert everything.count("resnet18") == 1


@pytest.mark.parametrize(
    ("name", "options", "shape"),
    [(n, o, s) for n, o, shapes in CASES for s in shapes],
    ids=lambda v: str(v).replace(" ", ""),
)
def test_forward_shape_and_classifier_produces_the_logits(name, options, shape):
    torch.manual_seed(0)
    model = _build(name, options, shape).eval()
    layer = classifier_layer(model, num_classes=7)
    seen = {}
    handle = layer.register_forward_hook(lambda m, i, o: seen.update(inp=i[0], out=o))
    with torch.no_grad():
        logits = model(torch.randn(3, *shape))
    handle.remove()
    assert logits.shape == (3, 7)
    assert torch.equal(seen["out"], logits)
    assert seen["inp"].shape == (3, layer.in_features)


def test_cnn_and_mlp_learn_digits():
    """Five epochs on 1,400 8x8 digits give far-above-chance validation accuracy."""
    from sklearn.datasets import load_digits

    d = load_digits()
    threads = torch.get_num_threads()
    # One thread: under CPU contention, two OpenMP threads on tiny batches can run 10x slower.
    torch.set_num_threads(1)
    try:
        _train_and_check_digits(d)
    finally:
        torch.set_num_threads(threads)


def _train_and_check_digits(d) -> None:
    x = torch.as_tensor(d.data, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    y = torch.as_tensor(d.target)
    for name in ("cnn", "mlp"):
        torch.manual_seed(0)
        model = build_model(ModelConfig(name), input_shape=(1, 8, 8), num_classes=10)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _ in range(5):
            for idx in torch.randperm(1400).split(64):
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            acc = (model(x[1400:]).argmax(1) == y[1400:]).float().mean()
        assert acc > 0.85, (name, float(acc))


def test_cnn_pooling_depends_on_input_size():
    def spatial(shape):
        model = build_model(ModelConfig("cnn"), input_shape=shape, num_classes=3)
        conv2 = [m for m in model.modules() if isinstance(m, nn.Conv2d)][1]
        seen = {}
        conv2.register_forward_hook(lambda m, i, o: seen.update(hw=tuple(o.shape[-2:])))
        model(torch.randn(2, *shape))
        return seen["hw"]

    assert spatial((1, 8, 8)) == (8, 8)
    assert spatial((1, 28, 28)) == (7, 7)
    assert spatial((3, 32, 32)) == (8, 8)


def test_mlp_depth_and_dropout():
    model = build_model(
        ModelConfig("mlp", {"width": 5, "depth": 3, "dropout": 0.5}),
        input_shape=(4,),
        num_classes=2,
    )
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 5), (5, 5), (5, 5), (5, 2)]
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.modules()) == 3
    logistic = build_model(ModelConfig("mlp", {"depth": 0}), input_shape=(1, 8, 8), num_classes=10)
    assert classifier_layer(logistic).in_features == 64


def test_resnet18_has_cifar_stem_and_any_channels():
    model = build_model(
        ModelConfig("resnet18", {"width": 8}), input_shape=(5, 16, 16), num_classes=4
    )
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert (first.in_channels, first.kernel_size, first.stride) == (5, (3, 3), (1, 1))
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert (
        sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 1 + 16 + 3
    )  # stem, blocks, proj
    assert classifier_layer(model).in_features == 64


def test_unknown_model_name_message():
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig("cnnn"), input_shape=(1, 8, 8), num_classes=10)
    assert str(err.value) == (
        "model.name must be one of cnn, mlp, resnet18, or 'module:attr', or a torchvision model; "
        "got 'cnnn' (did you mean 'cnn'?)"
    )
    with pytest.raises(ConfigError, match=re.escape("got 'resnet5' (did you mean 'resnet50'?)")):
        build_model(ModelConfig("resnet5"), input_shape=(3, 32, 32), num_classes=10)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "mlp",
            {"widht": 3},
            "unknown key 'model.options.widht' for model 'mlp' (did you mean 'width'?); "
            "accepted: depth, dropout, width",
        ),
        (
            "cnn",
            {"embed": 3, "width": 4},
            "unknown key 'model.options.embed' for model 'cnn' (did you mean 'embed_dim'?); "
            "accepted: dropout, embed_dim, width",
        ),
        (
            "mlp",
            {"num_classes": 3},
            "model.options.num_classes is passed by graft-hpo to model 'mlp' as an argument; "
            "remove it",
        ),
        (
            "tests.plugins.toy:mlp",
            {"width": 3},
            "unknown key 'model.options.width' for model plug-in 'tests.plugins.toy:mlp'; "
            "accepted: hidden",
        ),
        (
            "tests.plugins.toy:needs_depth",
            {},
            "model.options.depth is required by model plug-in 'tests.plugins.toy:needs_depth'; "
            "got nothing",
        ),
        ("mlp", {"width": 0}, "model.options.width must be an integer >= 1; got 0"),
        (
            "mlp",
            {"dropout": 1.0},
            "model.options.dropout must be a number >= 0.0 and < 1.0; got 1.0",
        ),
        ("cnn", {"width": True}, "model.options.width must be an integer >= 1; got True"),
        (
            "mobilenet_v2",
            {"width_mul": 0.5},
            "model.options ['width_mul'] are not all accepted by torchvision model 'mobilenet_v2'",
        ),
        (
            "resnet50",
            {"weights": "DEFAULT"},
            "model.options.weights must be absent (graft-hpo never loads pretrained weights); "
            "got 'DEFAULT'",
        ),
    ],
)
def test_bad_options(name, options, message):
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(name, options), input_shape=(3, 32, 32), num_classes=10)
    assert str(err.value).startswith(message)
    if name in available_models():  # a registered model's values are checked without data
        with pytest.raises(ConfigError) as checked:
            check_model(ModelConfig(name, options))
        assert str(checked.value) == str(err.value)


@pytest.mark.parametrize("name", available_models())
def test_check_model_builds_nothing_and_refuses_no_valid_options(name):
    """check_model's nominal build (meta device) takes every registered model with its
    defaults and with the bundled spaces' extremes; names alone without ``values``."""
    for options in ({}, {"width": 1}, {"width": 64}):
        factory = check_model(ModelConfig(name, options))
        assert callable(factory)
    check_model(ModelConfig(name, {"width": None}), values=False)  # names only: no build


@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        (
            "cnn",
            (20,),
            "model.name 'cnn' needs image inputs of shape (C, H, W); the data gives input_shape "
            "(20,)",
        ),
        ("resnet18", (4, 4), "model.name 'resnet18' needs image inputs of shape (C, H, W)"),
        (
            "resnet50",
            (1, 28, 28),
            "model.name 'resnet50' is a torchvision model and needs (3, H, W) images",
        ),
    ],
)
def test_input_shapes_a_model_cannot_take(name, shape, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        build_model(ModelConfig(name), input_shape=shape, num_classes=10)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            "wrong_head",
            "must build a model whose last nn.Linear has out_features == num_classes (10); got "
            "out_features=11",
        ),
        (
            "no_linear",
            "must build a model ending in an nn.Linear classifier; Sequential has no nn.Linear",
        ),
        ("not_a_module", "must build an nn.Module; got str"),
    ],
)
def test_plugin_factories_that_break_the_contract(factory, message):
    name = f"tests.plugins.toy:{factory}"
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(name), input_shape=(1, 8, 8), num_classes=10)
    assert str(err.value) == f"model.name {name!r} {message}"


def test_plugin_factory_without_num_classes_parameter():
    with pytest.raises(
        ConfigError, match=re.escape("must accept (input_shape, num_classes, **options)")
    ):
        build_model(ModelConfig("tests.plugins.toy:one_arg"), input_shape=(4,), num_classes=2)


def test_classifier_layer_picks_the_last_linear_and_checks_width():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    assert classifier_layer(model) is model[2]
    with pytest.raises(
        ConfigError, match=re.escape("out_features == num_classes (5); got out_features=3")
    ):
        classifier_layer(model, num_classes=5)
    with pytest.raises(ConfigError, match=re.escape("Conv2d has no nn.Linear")):
        classifier_layer(nn.Conv2d(1, 1, 1))
