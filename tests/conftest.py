"""Shared test setup: keep caches and GL choices inside the test's own temp folders; give each parallel worker its
own cores."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs one worker per core, 2 to 4), pin each worker, and the runs it starts, to
    its own share of the cores: two workers that each spread torch over every core would make both several times
    slower."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < count:
        return
    share = cores[int(worker.removeprefix("gw")) % count :: count]
    os.sched_setaffinity(0, share)  # inherited by subprocesses: lamp's `threads: 0` then uses these cores only
    import torch

    torch.set_num_threads(len(share))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the user's real ~/.cache/lamp from a test."""
    monkeypatch.setenv("LAMP_CACHE", str(tmp_path_factory.mktemp("lamp_cache")))
