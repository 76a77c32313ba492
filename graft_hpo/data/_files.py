"""Finding torchvision-format files under ``data.root``, downloading them when allowed."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

from graft_hpo.data._base import Source
from graft_hpo.exceptions import ConfigError

__all__ = ["FILES", "Files", "check_files", "ensure_files", "find_file"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Files:
    """The torchvision-format files a built-in data set reads.

    Attributes:
        folder: sub-folder of ``data.root``, e.g. ``"cifar-10-batches-py"``.
        names: file names expected in it (``name`` or ``name.gz``).
        torchvision_class: the torchvision data set class that downloads them.
    """

    folder: str
    names: tuple[str, ...]
    torchvision_class: str


FILES: dict[str, Files] = {}  # data set name -> its files; filled by the builders' modules


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or, failing that, ``folder/name.gz``; None when neither exists."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(source: Source, files: Files) -> list[str]:
    return [f for f in files.names if find_file(source.root / files.folder, f) is None]


def _expected(files: Files, absent: list[str]) -> str:
    more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
    return f"expected {files.folder}/{absent[0]}{more}"


def check_files(source: Source, *, name: str) -> list[str]:
    """Refuse, without reading them, the missing files of data set ``name`` that
    :func:`ensure_files` would refuse (missing files are fine when downloading is on).

    Returns:
        The files missing (to download); none for a data set without files.

    Raises:
        ConfigError: files are missing and downloading is off.
    """
    files = FILES.get(name)
    absent = [] if files is None else _missing(source, files)
    if files is not None and absent and not source.download:
        raise ConfigError(
            f"data.root: {name} files not found under '{source.root}' "
            f"({_expected(files, absent)}); set data.download=true or point data.root at them"
        )
    return absent


def ensure_files(source: Source, *, name: str) -> Path:
    """Make sure ``source.root`` holds the files of data set ``name`` (:data:`FILES`),
    downloading them when allowed.

    Downloading goes through ``torchvision.datasets.<torchvision_class>(root, download=True)``,
    which verifies checksums; files that are already present are read as they are.

    Returns:
        The absolute folder holding the files.

    Raises:
        ConfigError: files are missing and downloading is off or fails.
    """
    files = FILES[name]
    absent = check_files(source, name=name)
    if not absent:
        return source.root / files.folder
    expected = _expected(files, absent)
    logger.info("downloading %s into %s", name, source.root)
    try:
        datasets = importlib.import_module("torchvision.datasets")
        getattr(datasets, files.torchvision_class)(str(source.root), train=True, download=True)
    except Exception as exc:  # URLError, RuntimeError (checksum), OSError, ...
        raise ConfigError(
            f"data.root: {name} files not found under '{source.root}' ({expected}) and the "
            f"download failed ({type(exc).__name__}: {exc}); point data.root at the files"
        ) from exc
    if _missing(source, files):
        raise ConfigError(
            f"data.root: {name} files still missing under '{source.root}' after downloading "
            f"({expected}); point data.root at them"
        )
    return source.root / files.folder
