"""Weights cache: atomic downloads from a local HTTP server, SHA-256 record/verify, offline mode. No real network."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lamp import weights
from lamp.errors import UsageError

PAYLOAD = b"not really a checkpoint, but bytes are bytes " * 40_000  # ~1.8 MB: several download chunks


def fake_fetcher(body: bytes, fail_after: int | None = None, calls: list | None = None):
    """Stands in for gdown: writes `body` in chunks, reporting progress; optionally dies part-way (a lost link)."""

    def fetch(file_id: str, output: Path, progress) -> None:
        if calls is not None:
            calls.append(file_id)
        (output.parent / f"{output.name}.part").write_bytes(b"")  # gdown's own temp file, left by a failure
        with open(output, "wb") as f:
            for start in range(0, len(body), 1 << 16):
                if fail_after is not None and start >= fail_after:
                    raise ConnectionError("Connection broken: IncompleteRead")
                f.write(body[start : start + (1 << 16)])
                progress(min(start + (1 << 16), len(body)), len(body))

    return fetch


@pytest.fixture(autouse=True)
def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMP_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cache_dir_and_available_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMP_CACHE", str(tmp_path))
    assert weights.cache_dir() == tmp_path
    assert weights.available_weights() == {"resnet50": None, "resnet34": None, "resnet18": None}
    (tmp_path / "r3m_18").mkdir()
    (tmp_path / "r3m_18" / "model.pt").write_bytes(b"x")
    assert weights.available_weights()["resnet18"] == tmp_path / "r3m_18" / "model.pt"
    monkeypatch.delenv("LAMP_CACHE")
    assert weights.cache_dir() == Path.home() / ".cache" / "lamp"


def test_download_is_atomic_and_records_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "drive_fetcher", fake_fetcher(PAYLOAD))
    dest = tmp_path / "r3m_50" / "model.pt"
    digest = weights.download_drive("abc", dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert (tmp_path / "r3m_50" / "model.pt.sha256").read_text().split()[0] == digest
    assert leftovers(dest.parent) == ["model.pt", "model.pt.sha256"]  # no temp files
    assert weights.verify_sha256(dest) == digest


@pytest.mark.parametrize(
    ("fetcher", "message"),
    [
        (fake_fetcher(PAYLOAD, fail_after=1 << 17), "could not download R3M resnet50 .*IncompleteRead"),
        (fake_fetcher(b"\n  <!DOCTYPE html><html>quota exceeded</html>"), "HTML page"),
        (fake_fetcher(b""), "produced no data"),
    ],
)
def test_failed_downloads_leave_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fetcher, message: str
) -> None:
    monkeypatch.setattr(weights, "drive_fetcher", fetcher)
    dest = tmp_path / "r3m_50" / "model.pt"
    with pytest.raises(UsageError, match=message) as info:
        weights.download_drive("abc", dest, desc="R3M resnet50", progress=False)
    assert "\n" not in str(info.value) and f"place it at {dest}" in str(info.value)
    assert leftovers(dest.parent) == []


def test_downloads_go_through_gdown_with_the_drive_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gdown

    seen = {}

    def fake_download(**kwargs):
        seen.update(kwargs)
        Path(kwargs["output"]).write_bytes(PAYLOAD)
        kwargs["progress"](len(PAYLOAD), len(PAYLOAD))
        return kwargs["output"]

    monkeypatch.setattr(gdown, "download", fake_download)
    monkeypatch.setenv("LAMP_CACHE", str(tmp_path))
    path = weights.ensure_r3m_checkpoint("resnet50", progress=True)
    assert seen["id"] == weights.R3M_DRIVE_IDS["resnet50"] and seen["quiet"] is True
    assert path.read_bytes() == PAYLOAD


def test_ensure_downloads_once_then_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMP_CACHE", str(tmp_path))
    calls: list[str] = []
    monkeypatch.setattr(weights, "drive_fetcher", fake_fetcher(PAYLOAD, calls=calls))
    path = weights.ensure_r3m_checkpoint("resnet18", progress=False)
    assert path == tmp_path / "r3m_18" / "model.pt" and path.read_bytes() == PAYLOAD
    assert calls == [weights.R3M_DRIVE_IDS["resnet18"]]
    assert weights.ensure_r3m_checkpoint("resnet18", progress=False) == path
    assert len(calls) == 1  # cached: no second download
    assert weights.available_weights()["resnet18"] == path


def test_the_original_codes_download_in_home_r3m_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    original = tmp_path / "home" / ".r3m" / "r3m_50" / "model.pt"
    original.parent.mkdir(parents=True)
    original.write_bytes(PAYLOAD)

    def no_network(*args) -> None:
        raise AssertionError("downloaded although ~/.r3m has the file")

    monkeypatch.setattr(weights, "drive_fetcher", no_network)
    logged: list[str] = []
    assert weights.ensure_r3m_checkpoint("resnet50", log=logged.append) == original
    assert "~" not in logged[0] and str(original) in logged[0]
    assert weights.available_weights()["resnet50"] == original
    assert leftovers(original.parent) == ["model.pt"]  # nothing written into the user's ~/.r3m


def test_checksum_mismatch_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMP_CACHE", str(tmp_path))
    path = weights.r3m_checkpoint_path("resnet50")
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    weights.verify_sha256(path)  # first load of a hand-placed file records its hash
    path.write_bytes(PAYLOAD[:-1] + b"!")  # later corrupted / swapped
    with pytest.raises(UsageError, match=r"checksum mismatch for .*model\.pt.*delete"):
        weights.ensure_r3m_checkpoint("resnet50")


@pytest.mark.parametrize("flag", ["LAMP_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_never_touches_network_and_names_the_path(
    flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMP_CACHE", str(tmp_path))
    monkeypatch.setenv(flag, "1")

    def no_network(*args) -> None:
        raise AssertionError(f"network used in offline mode: {args}")

    monkeypatch.setattr(weights, "drive_fetcher", no_network)
    with pytest.raises(UsageError) as info:
        weights.ensure_r3m_checkpoint("resnet34")
    message = str(info.value)
    assert f"place it at {tmp_path / 'r3m_34' / 'model.pt'}" in message and "\n" not in message
    with pytest.raises(UsageError, match="offline"):
        weights.download_drive("abc", tmp_path / "x.pt")
    assert not (tmp_path / "r3m_34").exists() or leftovers(tmp_path / "r3m_34") == []


def test_unknown_model_id() -> None:
    with pytest.raises(UsageError, match=r"unknown scorer\.model 'resnet101'"):
        weights.r3m_checkpoint_path("resnet101")


def test_tokenizer_offline_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from lamp.scorers.r3m import load_tokenizer

    monkeypatch.setenv("LAMP_OFFLINE", "1")
    with pytest.raises(UsageError, match="offline mode is on") as info:
        load_tokenizer("lamp-tests/no-such-tokenizer")
    assert "scorer.tokenizer" in str(info.value)
