"""Weights cache: atomic downloads from a local HTTP server, SHA-256 record/verify, offline mode. No real network."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamp import weights
from lamp.errors import UsageError

PAYLOAD = b"not really a checkpoint, but bytes are bytes " * 40_000  # ~1.8 MB: several download chunks


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves /ok (the payload), /short (claims more bytes than it sends) and /html (a Drive-style error page)."""

    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/ok"):
            body, ctype, length = PAYLOAD, "application/octet-stream", len(PAYLOAD)
        elif self.path.startswith("/short"):
            body, ctype, length = PAYLOAD[:1000], "application/octet-stream", len(PAYLOAD)
        elif self.path.startswith("/html"):
            body, ctype, length = b"<html>quota exceeded</html>", "text/html; charset=utf-8", 27
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(httpd: http.server.HTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


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


def test_download_is_atomic_and_records_sha256(server, tmp_path: Path) -> None:
    dest = tmp_path / "r3m_50" / "model.pt"
    digest = weights.download(url(server, "/ok"), dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert (tmp_path / "r3m_50" / "model.pt.sha256").read_text().split()[0] == digest
    assert leftovers(dest.parent) == ["model.pt", "model.pt.sha256"]  # no temp files
    assert weights.verify_sha256(dest) == digest


@pytest.mark.parametrize(("path", "message"), [("/short", "truncated"), ("/html", "HTML page"), ("/nope", "404")])
def test_failed_downloads_leave_nothing_behind(server, tmp_path: Path, path: str, message: str) -> None:
    dest = tmp_path / "r3m_50" / "model.pt"
    with pytest.raises(UsageError, match=message) as info:
        weights.download(url(server, path), dest, progress=False)
    assert "\n" not in str(info.value)
    assert leftovers(dest.parent) == []


def test_ensure_downloads_once_then_verifies(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMP_CACHE", str(tmp_path))
    monkeypatch.setattr(weights, "DRIVE_URL", url(server, "/ok?id={id}"))
    path = weights.ensure_r3m_checkpoint("resnet18", progress=False)
    assert path == tmp_path / "r3m_18" / "model.pt" and path.read_bytes() == PAYLOAD
    assert server.hits == [f"/ok?id={weights.R3M_DRIVE_IDS['resnet18']}"]
    assert weights.ensure_r3m_checkpoint("resnet18", progress=False) == path
    assert len(server.hits) == 1  # cached: no second request
    assert weights.available_weights()["resnet18"] == path


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

    def no_network(url: str) -> None:
        raise AssertionError(f"network used in offline mode: {url}")

    monkeypatch.setattr(weights, "url_opener", no_network)
    with pytest.raises(UsageError) as info:
        weights.ensure_r3m_checkpoint("resnet34")
    message = str(info.value)
    assert f"place it at {tmp_path / 'r3m_34' / 'model.pt'}" in message and "\n" not in message
    with pytest.raises(UsageError, match="offline"):
        weights.download("http://127.0.0.1:9/x", tmp_path / "x.pt")
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
