"""Atomic folder writes and checksums, shared by every artefact the router saves.

A save writes a complete sibling folder first, then swaps it into place, so a save killed midway leaves the
previous folder intact (at worst a stray ``.tmp`` sibling that the next save removes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_folder", "sha256_file", "recover_interrupted_save"]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_folder(folder: Path) -> None:
    for item in folder.iterdir():
        if item.is_file():
            with item.open("rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_interrupted_save(target: str | os.PathLike[str]) -> bool:
    """Put back the previous folder if a save was killed between its two renames; True if it did."""
    target = Path(target).absolute()
    if target.exists():
        return False
    backups = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if not backups:
        return False
    os.rename(backups[-1], target)
    return True


def atomic_folder(target: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(staging_folder)`` and then put the staging folder at ``target`` in one step.

    If ``target`` exists it is replaced only after ``write`` returned; if ``write`` raises, ``target`` is left
    untouched and the staging folder is removed.

    Raises:
        OSError: if the parent folder is not writable (with the path in the message).
    """
    target = Path(target).absolute()
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder")
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_save(target)
    for stale in parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    try:
        write(staging)
        _fsync_folder(staging)
        if target.exists():
            backup = parent / f".{target.name}.old-{os.getpid()}"
            os.rename(target, backup)
            try:
                os.rename(staging, target)
            except BaseException:
                os.rename(backup, target)
                raise
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
