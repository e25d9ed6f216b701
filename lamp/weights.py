"""Scorer weights on disk: cache directory, offline switch, atomic downloads with a recorded SHA-256.

The official R3M checkpoints live on Google Drive (ids from facebookresearch/r3m). We download each once into
`$LAMP_CACHE/r3m_50/model.pt` (r3m_34, r3m_18), write `model.pt.sha256` next to it, and verify that hash on every
later load, so a truncated or swapped file is caught instead of silently scoring with the wrong network.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from lamp.atomic import atomic_path, atomic_write_bytes
from lamp.errors import UsageError

# Official R3M checkpoints (model.pt): Google-Drive file ids, same as upstream facebookresearch/r3m `load_r3m`.
R3M_DRIVE_IDS: dict[str, str] = {
    "resnet50": "1Xu0ssuG0N1zjZS54wmWzJ7-nb0-7XzbA",
    "resnet34": "15bXD3QRhspIRacOKyWPw5y2HpoWUCEnE",
    "resnet18": "1A1ic-p4KtYlKXdXHcV2QV0cUzI4kn0u-",
}
# Cache sub-folders, named like the original's ~/.r3m/<folder> (and `lamp doctor`'s check).
R3M_FOLDERS: dict[str, str] = {"resnet50": "r3m_50", "resnet34": "r3m_34", "resnet18": "r3m_18"}
# `confirm=t` skips Drive's "file too large to scan for viruses" interstitial page for the ~300 MB ResNet-50 file.
DRIVE_URL = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"
CHUNK = 1 << 20

# Indirection so tests can replace the network with a local server or an in-memory opener.
URLOpener = Callable[[str], BinaryIO]


def _default_opener(url: str) -> BinaryIO:
    request = urllib.request.Request(url, headers={"User-Agent": "lamp (python urllib)"})
    return urllib.request.urlopen(request, timeout=60)


url_opener: URLOpener = _default_opener


def cache_dir() -> Path:
    """Where lamp keeps downloaded weights: `$LAMP_CACHE`, default `~/.cache/lamp`."""
    return Path(os.environ.get("LAMP_CACHE") or Path.home() / ".cache" / "lamp").expanduser()


def offline() -> bool:
    """True when `LAMP_OFFLINE=1` or `HF_HUB_OFFLINE=1`: then nothing may touch the network."""
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(k, "").strip().lower() in truthy for k in ("LAMP_OFFLINE", "HF_HUB_OFFLINE"))


def r3m_checkpoint_path(model: str) -> Path:
    """The cache location of an official R3M checkpoint (where a manually downloaded file must be placed)."""
    _check_model_id(model)
    return cache_dir() / R3M_FOLDERS[model] / "model.pt"


def available_weights() -> dict[str, Path | None]:
    """For `lamp doctor`: each official R3M model id -> its cached checkpoint path, or None when not downloaded."""
    out: dict[str, Path | None] = {}
    for model in R3M_DRIVE_IDS:
        path = r3m_checkpoint_path(model)
        out[model] = path if path.is_file() else None
    return out


def _check_model_id(model: str) -> None:
    if model not in R3M_DRIVE_IDS:
        raise UsageError(f"unknown scorer.model '{model}'; valid ids: {', '.join(R3M_DRIVE_IDS)}")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, streamed so a 300 MB checkpoint never sits in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, *, record_if_missing: bool = True) -> str:
    """Check `path` against its recorded `<path>.sha256`; record it when none exists yet. Returns the hash."""
    record = path.with_name(path.name + ".sha256")
    if not record_if_missing and not record.is_file():
        return ""
    actual = sha256_file(path)
    if record.is_file():
        fields = record.read_text().split()
        expected = fields[0].lower() if fields else ""
        if expected != actual:
            raise UsageError(
                f"checksum mismatch for {path}: recorded sha256 {expected[:12]}…, file has {actual[:12]}…; "
                f"delete {path} and {record.name} to download it again"
            )
    else:
        atomic_write_bytes(record, f"{actual}  {path.name}\n".encode())
    return actual


def download(url: str, dest: Path, *, desc: str = "download", progress: bool = True) -> str:
    """Download `url` to `dest` atomically (temp file + fsync + rename), record its SHA-256; return the hash.

    Nothing is left at `dest` unless the whole body arrived: a short read, an HTML error page (Drive quota/consent
    pages) or an interrupt removes the temp file.
    """
    if offline():
        raise UsageError(f"offline (LAMP_OFFLINE/HF_HUB_OFFLINE set): cannot download {desc}; place the file at {dest}")
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    with atomic_path(dest) as tmp:  # fsync + rename on success; the temp file is removed on any error
        try:
            response = url_opener(url)
        except OSError as err:  # URLError, HTTPError, socket errors all derive from OSError
            raise UsageError(
                f"could not download {desc} from {url} ({err}); download it and place it at {dest}"
            ) from None
        with response, open(tmp, "wb") as f:
            headers = getattr(response, "headers", None)
            ctype = (headers.get("Content-Type", "") if headers is not None else "") or ""
            if ctype.startswith("text/html"):
                raise UsageError(
                    f"{url} returned an HTML page instead of {desc} (Drive quota or consent page); "
                    f"download it in a browser and place it at {dest}"
                )
            total = int(headers.get("Content-Length") or 0) if headers is not None else 0
            received = 0
            with tqdm(total=total or None, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
            if total and received != total:
                raise UsageError(f"download of {desc} was truncated ({received} of {total} bytes); run again")
    hexdigest = digest.hexdigest()
    atomic_write_bytes(dest.with_name(dest.name + ".sha256"), f"{hexdigest}  {dest.name}\n".encode())
    return hexdigest


def ensure_r3m_checkpoint(model: str, *, progress: bool = True) -> Path:
    """Path of the official R3M `model` checkpoint, downloading it once if missing (unless offline)."""
    path = r3m_checkpoint_path(model)
    if path.is_file():
        verify_sha256(path)
        return path
    if offline():
        raise UsageError(
            f"R3M {model} weights not in the cache and offline mode is on; download "
            f"{DRIVE_URL.format(id=R3M_DRIVE_IDS[model])} and place it at {path}"
        )
    download(DRIVE_URL.format(id=R3M_DRIVE_IDS[model]), path, desc=f"R3M {model}", progress=progress)
    return path
