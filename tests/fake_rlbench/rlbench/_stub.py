"""Stub-only inspection and fault injection (never imported by the adapter).

`faults` is a FIFO of (call, index, what): when the `index`-th call (0-based, counted per process) of
`reset`, `step` or `launch` happens, `what` fires: an exception instance or class is raised, "crash" kills
the process (os._exit, like a CoppeliaSim segfault), "hang" sleeps for an hour. A worker process reads the
same schedule from the RLBENCH_STUB_FAULTS environment variable as JSON: [["step", 3, "crash"], ...] with
exception names from rlbench.backend.exceptions or pyrep.errors.
"""

from __future__ import annotations

import json
import os
import time

from pyrep import _world

faults: list[tuple[str, int, object]] = []
last_actions: list = []
counters: dict[str, int] = {}


def texture_log() -> list[tuple[str, str | None, dict]]:
    """(object name, texture file, set_texture kwargs) for every texture applied since launch."""
    return _world.WORLD.texture_log


def world():
    return _world.WORLD


def clear() -> None:
    faults.clear()
    last_actions.clear()
    counters.clear()
    _load_env_faults()


def _load_env_faults() -> None:
    spec = os.environ.get("RLBENCH_STUB_FAULTS")
    if not spec:
        return
    from pyrep import errors as pe

    from rlbench.backend import exceptions as re_

    for call, index, what in json.loads(spec):
        if what not in ("crash", "hang"):
            what = getattr(re_, what, None) or getattr(pe, what, None) or RuntimeError(what)
        faults.append((call, int(index), what))


def tick(call: str) -> None:
    """Count a call and fire the scheduled fault for it, if any."""
    index = counters.get(call, 0)
    counters[call] = index + 1
    for entry in list(faults):
        if entry[0] == call and entry[1] == index:
            faults.remove(entry)
            what = entry[2]
            if what == "crash":
                os._exit(139)
            if what == "hang":
                time.sleep(3600)
            raise what() if isinstance(what, type) else what


_load_env_faults()
