"""Atomic file writes (temp file in the same folder, fsync, rename): a crash never leaves half a file behind."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)
# the names atomic_path gives its temp files: .<stem>.<random>.tmp<suffix>
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp(\.[A-Za-z0-9]+)?$")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path next to `path`; on success fsync it and rename it over `path`, on error delete it.

    For writers that need a file name (torch.save, imageio, np.savez) rather than bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give them the mode a plain open() would
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows it
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_copy(src: str | Path, dst: str | Path) -> None:
    """Make `dst` a copy of `src` atomically: a hard link where the filesystem has them (no bytes copied), else a
    full copy; either way `dst` is always a complete file (used to keep the previous checkpoint)."""
    src, dst = Path(src), Path(dst)
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def clean_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temp files that writes interrupted by a crash or kill -9 left under `folder` (any depth)."""
    removed = []
    for path in Path(folder).rglob(".*.tmp*"):
        if path.is_file() and TEMP_NAME.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
