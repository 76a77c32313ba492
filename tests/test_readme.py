"""The README's code stays true: its own-loop example runs and trains on a subset.

And the guide's links hold: every relative link in README.md, benchmarks/README.md and docs/
names a file that exists, and every #anchor a heading of the file it points into.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


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


def _slugs(markdown: Path) -> set[str]:
    """GitHub's anchors for a file's headings (lower case, punctuation dropped, spaces to '-')."""
    text = re.sub(r"^```.*?^```", "", markdown.read_text(), flags=re.S | re.M)
    slugs: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = 0
        while (candidate := slug if n == 0 else f"{slug}-{n}") in slugs:
            n += 1
        slugs.add(candidate)
    return slugs


def test_relative_links_resolve() -> None:
    pages = [README, ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
        text = re.sub(r"`[^`\n]*`", "", text)  # code spans: not links
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, mailto: ...
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _slugs(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
