from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

WriteYaml = Callable[..., Path]


@pytest.fixture
def write_yaml(tmp_path: Path) -> WriteYaml:
    """Write text to ``tmp_path/<name>`` and return the path."""

    def write(text: str, name: str = "pipe.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write
