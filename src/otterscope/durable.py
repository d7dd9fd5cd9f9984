"""Writing files that must survive a crash: fsync of a path, and whole-file replacement
(temporary file, fsync, rename, directory fsync) so a reader finds the old content or the
new, never a mix, and the new one is on disk when the call returns."""

from __future__ import annotations

import errno
import os
from pathlib import Path

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def out_of_space(exc: OSError) -> bool:
    """Whether a write failed because the file system (or the user's quota) is full."""
    return exc.errno in _NO_SPACE


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(folder: Path) -> None:
    """Create ``folder`` and its parents, each new entry durable in its parent."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        d.mkdir()
        fsync_path(d.parent)


def write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)
