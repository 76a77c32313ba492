"""The pure helpers behind benchmarks/layout_bench.py's table (nothing is timed here)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from benchmarks.layout_bench import logits_agree
from benchmarks.layout_bench import main
from benchmarks.layout_bench import markdown_table
from benchmarks.layout_bench import summarise
from benchmarks.layout_bench import verdict


def _row(label: str, train: tuple[float, float], ev: tuple[float, float], equal: bool) -> dict:
    times = {
        "train": {"nchw": [train[0]], "channels_last": [train[1]]},
        "eval": {"nchw": [ev[0]], "channels_last": [ev[1]]},
    }
    return {
        "label": label,
        "samples": 2048,
        "batch": 128,
        "equal": equal,
        "max_abs_diff": 3e-8 if equal else 0.5,
        "summary": summarise(times),
    }


def test_summarise_takes_medians_and_their_ratio() -> None:
    times = {
        "train": {"nchw": [3.0, 1.0, 2.0, 9.0, 2.5], "channels_last": [1.0, 5.0, 1.25, 0.5, 1.0]},
        "eval": {"nchw": [4.0, 6.0], "channels_last": [2.0, 2.0]},
    }
    out = summarise(times)
    assert out["train"] == {"nchw_s": 2.5, "channels_last_s": 1.0, "speedup": 2.5}
    # an even count: the mean of the middle two
    assert out["eval"] == {"nchw_s": 5.0, "channels_last_s": 2.0, "speedup": 2.5}


def test_summarise_ratio_below_one_when_channels_last_is_slower() -> None:
    out = summarise({"train": {"nchw": [1.0], "channels_last": [4.0]}})
    assert out["train"]["speedup"] == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("speedup", "expected"),
    [
        (1.0, "no clear difference"),
        (1.04, "no clear difference"),
        (0.96, "no clear difference"),
        (1.5, "channels_last 1.50x faster"),
        (2.07, "channels_last 2.07x faster"),
        (0.5, "NCHW 2.00x faster"),
        (0.8, "NCHW 1.25x faster"),
    ],
)
def test_verdict(speedup: float, expected: str) -> None:
    assert verdict(speedup) == expected


def test_markdown_table_rows_and_verdicts() -> None:
    rows = [
        _row("cnn w16", (0.166, 0.112), (0.108, 0.052), True),
        _row("resnet18", (1.0, 2.0), (1.0, 1.01), False),
    ]
    lines = markdown_table(rows)
    header, rule, first, second, blank, v1, v2 = lines
    assert header.count("|") == rule.count("|") == first.count("|") == 10
    assert first == (
        "| cnn w16 | 2048 / 128 | 0.166 | 0.112 | 1.48x | 0.108 | 0.052 | 2.08x | equal |"
    )
    assert second.endswith("| 0.50x | 1.000 | 1.010 | 0.99x | DIFFER |")
    assert blank == ""
    assert v1.startswith("- cnn w16: training channels_last 1.48x faster; eval forward")
    assert "logits equal" in v1
    assert "training NCHW 2.00x faster; eval forward no clear difference" in v2
    assert "logits DIFFER (max |diff| 0.5)" in v2


def test_logits_agree_for_a_conv_net_and_reports_the_gap() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(512, 4),
    )
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    equal, gap = logits_agree(model, x)
    assert equal
    assert 0.0 <= gap < 1e-5
    assert next(model.parameters()).is_contiguous()  # the caller's model is left alone


def test_bad_repeats_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["--quick", "--repeats", "-1"])
    assert info.value.code == 2


def test_quick_run_writes_json(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "layout.json"
    threads = torch.get_num_threads()
    try:
        assert main(["--quick", "--samples", "64", "--repeats", "1", "--json", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)  # main sets --threads for the whole process
    text = capsys.readouterr().out
    assert "| cnn w16 | 64 / 128 |" in text
    report = json.loads(out.read_text())
    (model,) = report["models"]
    assert model["equal"] is True
    assert len(model["times"]["train"]["nchw"]) == 1
    assert model["summary"]["eval"]["speedup"] > 0
