"""Shared test setup: keep caches and GL choices inside the test's own temp folders."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the user's real ~/.cache/lamp from a test."""
    monkeypatch.setenv("LAMP_CACHE", str(tmp_path_factory.mktemp("lamp_cache")))
