"""Finding torchvision-format files under ``data.root``, downloading them when allowed."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path

from graft_hpo.data._base import Source
from graft_hpo.exceptions import ConfigError

__all__ = ["ensure_files", "find_file"]

logger = logging.getLogger(__name__)


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or, failing that, ``folder/name.gz``; None when neither exists."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def ensure_files(
    source: Source,
    *,
    name: str,
    folder: str,
    files: Sequence[str],
    torchvision_class: str,
) -> Path:
    """Make sure ``source.root/folder`` holds ``files``, downloading them when allowed.

    Downloading goes through ``torchvision.datasets.<torchvision_class>(root, download=True)``,
    which verifies checksums; files that are already present are read as they are.

    Args:
        source: the root folder and the download flag.
        name: the data set's registry name (for messages).
        folder: sub-folder of the root, e.g. ``"cifar-10-batches-py"``.
        files: file names expected in it (``name`` or ``name.gz``).
        torchvision_class: the torchvision data set class that downloads them.

    Returns:
        The absolute folder holding the files.

    Raises:
        ConfigError: files are missing and downloading is off or fails.
    """
    directory = source.root / folder

    def missing() -> list[str]:
        return [f for f in files if find_file(directory, f) is None]

    absent = missing()
    if not absent:
        return directory
    more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
    expected = f"expected {folder}/{absent[0]}{more}"
    if not source.download:
        raise ConfigError(
            f"data.root: {name} files not found under '{source.root}' ({expected}); "
            "set data.download=true or point data.root at them"
        )
    logger.info("downloading %s into %s", name, source.root)
    try:
        datasets = importlib.import_module("torchvision.datasets")
        getattr(datasets, torchvision_class)(str(source.root), train=True, download=True)
    except Exception as exc:  # URLError, RuntimeError (checksum), OSError, ...
        raise ConfigError(
            f"data.root: {name} files not found under '{source.root}' ({expected}) and the "
            f"download failed ({type(exc).__name__}: {exc}); point data.root at the files"
        ) from exc
    if missing():
        raise ConfigError(
            f"data.root: {name} files still missing under '{source.root}' after downloading "
            f"({expected}); point data.root at them"
        )
    return directory
