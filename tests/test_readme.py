"""The README's code stays true: its own-loop example runs and trains on a subset."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block_after(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match is not None, f"no python block after {heading!r}"
    return match.group(1)


def test_own_loop_example_runs_and_trains_on_subsets() -> None:
    namespace: dict[str, object] = {}
    torch.manual_seed(0)  # the example's model initialisation reads the global RNG
    exec(
        compile(_python_block_after("### GRAFT in your own training loop"), "README", "exec"),
        namespace,
    )
    sampler = namespace["sampler"]
    n = len(namespace["train_set"])  # type: ignore[arg-type]
    assert sampler.selection is not None  # type: ignore[attr-defined]
    assert len(sampler) <= int(0.3 * n)  # type: ignore[arg-type]
    x, y = namespace["train_set"].tensors  # type: ignore[attr-defined]
    with torch.no_grad():
        accuracy = (namespace["model"](x).argmax(1) == y).double().mean()  # type: ignore[operator]
    assert float(accuracy) > 0.9  # 10 classes: chance is 0.1


def test_readme_has_exactly_the_two_setup_commands() -> None:
    text = README.read_text()
    block = text[text.index("## Two commands") : text.index("## Using it")]
    commands = re.findall(r"^make (\w+)", block, flags=re.M)
    assert commands == ["demo", "test"]
