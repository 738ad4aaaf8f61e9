"""Atomic folder writes and checksums, shared by every artefact the router saves.

A save writes a complete sibling folder first, then swaps it into place, so a save killed midway leaves the
previous folder intact (at worst a stray ``.tmp`` sibling that the next save removes).

A save replaces a folder only when it is absent, empty, or an earlier artefact of the same kind whose every entry
the artefact owns (``owned_files``): ``index --out .`` inside a project is refused instead of leaving only
``manifest.json`` behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from .errors import OverwriteRefusedError, WriteError

__all__ = ["atomic_folder", "atomic_file", "write_text_atomic", "write_json", "sha256_file",
           "recover_interrupted_save", "check_replaceable", "OwnedFiles"]

#: Given an existing folder, the names of the entries it holds as an artefact of one kind (an index, a data
#: set), or None when the folder is not such an artefact.
OwnedFiles = Callable[[Path], Optional[set]]


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


def check_replaceable(target: Path, owned_files: OwnedFiles, kind: str) -> None:
    """Refuse to replace ``target`` unless it is absent, empty, or an earlier ``kind`` holding only its own files.

    Raises:
        OverwriteRefusedError: naming the folder and what in it is not the artefact's.
    """
    if not target.exists():
        return
    if not target.is_dir():
        raise OverwriteRefusedError(f"{target} exists and is not a folder: give a new or empty folder for the {kind}")
    entries = {entry.name for entry in target.iterdir()}
    if not entries:
        return
    owned = owned_files(target)
    if owned is None:
        raise OverwriteRefusedError(
            f"refusing to replace {target}: it holds files and is not an earlier {kind} "
            f"({_listing(entries)}); give a new or empty folder")
    foreign = entries - set(owned)
    if foreign:
        raise OverwriteRefusedError(
            f"refusing to replace {target}: besides an earlier {kind} it holds {_listing(foreign)}; "
            "move them away or give another folder")


def _listing(names: set, shown: int = 5) -> str:
    ordered = sorted(names)
    more = f" and {len(ordered) - shown} more" if len(ordered) > shown else ""
    return ", ".join(ordered[:shown]) + more


def atomic_folder(target: str | os.PathLike[str], write: Callable[[Path], None], *,
                  owned_files: OwnedFiles | None = None, kind: str = "artefact") -> Path:
    """Call ``write(staging_folder)`` and then put the staging folder at ``target`` in one step.

    If ``target`` exists it is replaced only after ``write`` returned; if ``write`` raises, ``target`` is left
    untouched and the staging folder is removed. An existing non-empty ``target`` is replaced only when
    ``owned_files`` recognises it as an earlier artefact holding nothing else (without ``owned_files``, never).

    Raises:
        OverwriteRefusedError: ``target`` holds something that is not an earlier artefact of this kind.
        OSError: if the parent folder is not writable (with the path in the message).
    """
    target = Path(target).absolute()
    recover_interrupted_save(target)
    check_replaceable(target, owned_files or (lambda folder: None), kind)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
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


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike[str], error: type[WriteError] = WriteError) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` to write; on success it replaces ``target`` in one rename, on any
    failure it is removed and ``target`` is untouched (the one atomic file write of the project).

    Raises:
        WriteError (or ``error``): the folder is not writable or the disk is full, naming the path.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        os.close(handle)
    except OSError as exc:
        raise error(f"cannot write to {target.parent}: {exc.strerror or exc}") from exc
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise error(f"cannot write {target}: {reason}; nothing was written") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike[str], data: Any, indent: int = 2) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically; returns ``path``."""
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")
