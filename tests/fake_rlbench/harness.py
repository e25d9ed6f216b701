"""Put the stand-in on sys.path for a test, or leave the real stack in place inside the Docker image."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FAKE_ROOT = Path(__file__).resolve().parent
_FAKE_PACKAGES = ("rlbench", "pyrep")


def real_stack_available() -> bool:
    """True when a real PyRep/RLBench is importable and the stub is not forced (RLBENCH_STUB=1)."""
    if os.environ.get("RLBENCH_STUB") == "1":
        return False
    with _without_fake():
        return all(importlib.util.find_spec(name) is not None for name in _FAKE_PACKAGES)


def _purge() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in _FAKE_PACKAGES:
            del sys.modules[name]


@contextmanager
def _without_fake() -> Iterator[None]:
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != FAKE_ROOT]
    try:
        yield
    finally:
        sys.path[:] = saved


@contextmanager
def stack(flavor: str = "lamp", tmp_root: Path | None = None) -> Iterator[bool]:
    """Yield True when running on the stand-in (its modules purged afterwards), False on the real stack."""
    if real_stack_available():
        yield False
        return
    old_flavor = os.environ.get("RLBENCH_STUB_FLAVOR")
    old_root = os.environ.get("COPPELIASIM_ROOT")
    os.environ["RLBENCH_STUB_FLAVOR"] = flavor
    if tmp_root is not None:  # PyRep() refuses to start without it, like the real one
        os.environ["COPPELIASIM_ROOT"] = str(tmp_root)
    _purge()
    sys.path.insert(0, str(FAKE_ROOT))
    try:
        yield True
    finally:
        sys.path.remove(str(FAKE_ROOT))
        _purge()
        for key, old in (("RLBENCH_STUB_FLAVOR", old_flavor), ("COPPELIASIM_ROOT", old_root)):
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
