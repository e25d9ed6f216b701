"""Scorer weights on disk: cache directory, offline switch, atomic downloads with a recorded SHA-256.

The official R3M checkpoints live on Google Drive (ids from facebookresearch/r3m). We download each once with gdown
(as R3M itself does: it follows Drive's virus-scan confirmation and quota pages) into `$LAMP_CACHE/r3m_50/model.pt`
(r3m_34, r3m_18), write `model.pt.sha256` next to it, and verify that hash on every later load, so a truncated or
swapped file is caught instead of silently scoring with the wrong network. A checkpoint already downloaded by the
original code, in `~/.r3m/r3m_50/model.pt`, is used in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

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
DRIVE_URL = "https://drive.google.com/uc?id={id}"  # for messages: where to download a file by hand
CHUNK = 1 << 20

# (file id, output path, progress(bytes_so_far, bytes_total)) -> None; raises on failure. Tests replace it.
DriveFetcher = Callable[[str, Path, Callable[[int, "int | None"], None]], None]


def _gdown_fetch(file_id: str, output: Path, progress: Callable[[int, int | None], None]) -> None:
    import gdown

    gdown.download(id=file_id, output=str(output), quiet=True, progress=progress, retries=2, timeout=60)


drive_fetcher: DriveFetcher = _gdown_fetch


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


def original_checkpoint_path(model: str) -> Path:
    """Where the original R3M/LAMP code keeps the same file: ~/.r3m/r3m_50/model.pt."""
    _check_model_id(model)
    return Path.home() / ".r3m" / R3M_FOLDERS[model] / "model.pt"


def find_r3m_checkpoint(model: str) -> Path | None:
    """lamp's cache first, then the original code's ~/.r3m; None when neither holds the file."""
    for path in (r3m_checkpoint_path(model), original_checkpoint_path(model)):
        if path.is_file():
            return path
    return None


def available_weights() -> dict[str, Path | None]:
    """For `lamp doctor`: each official R3M model id -> its checkpoint path, or None when not downloaded."""
    return {model: find_r3m_checkpoint(model) for model in R3M_DRIVE_IDS}


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


@contextlib.contextmanager
def _byte_bar(desc: str, enabled: bool) -> Iterator[Callable[[int, int | None], None]]:
    """A rich progress bar in bytes (the CLI's one progress-bar library), fed by a (done, total) callback."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn(desc), BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True, disable=not enabled
    ) as bar:
        task = bar.add_task(desc, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def download_drive(file_id: str, dest: Path, *, desc: str = "download", progress: bool = True) -> str:
    """Download a Google-Drive file to `dest` atomically (fsync + rename), record its SHA-256; return the hash.

    gdown writes into a private temp folder next to `dest`; nothing is left at `dest` (or beside it) unless the whole
    file arrived and is not an HTML page (Drive's quota or consent pages).
    """
    url = DRIVE_URL.format(id=file_id)
    if offline():
        raise UsageError(f"offline (LAMP_OFFLINE/HF_HUB_OFFLINE set): cannot download {desc}; place the file at {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".download", dir=dest.parent))
    try:
        part = work / dest.name
        try:
            with _byte_bar(desc, progress) as on_progress:
                drive_fetcher(file_id, part, on_progress)
        except Exception as err:  # gdown raises its own errors, requests' and OSError; all mean "not downloaded"
            detail = (str(err).splitlines() or [type(err).__name__])[0][:200]
            raise UsageError(
                f"could not download {desc} from {url} ({detail}); download it by hand and place it at {dest}"
            ) from None
        if not part.is_file() or part.stat().st_size == 0:
            raise UsageError(
                f"download of {desc} from {url} produced no data; download it by hand and place it at {dest}"
            )
        with open(part, "rb") as f:
            head = f.read(512).lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise UsageError(
                f"{url} returned an HTML page instead of {desc} (Drive quota or consent page); "
                f"download it in a browser and place it at {dest}"
            )
        hexdigest = sha256_file(part)
        with atomic_path(dest) as tmp:
            os.replace(part, tmp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    atomic_write_bytes(dest.with_name(dest.name + ".sha256"), f"{hexdigest}  {dest.name}\n".encode())
    return hexdigest


def ensure_r3m_checkpoint(model: str, *, progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """Path of the official R3M `model` checkpoint: lamp's cache, else ~/.r3m, else downloaded once (unless offline)."""
    path = r3m_checkpoint_path(model)
    if path.is_file():
        verify_sha256(path)
        return path
    original = original_checkpoint_path(model)
    if original.is_file():  # the original code's download: used in place, verified only if a hash sits beside it
        verify_sha256(original, record_if_missing=False)
        log(f"using R3M {model} weights from {original} (where the original R3M code keeps them)")
        return original
    url = DRIVE_URL.format(id=R3M_DRIVE_IDS[model])
    if offline():
        raise UsageError(
            f"R3M {model} weights not in the cache and offline mode is on; download {url} and place it at {path}"
        )
    download_drive(R3M_DRIVE_IDS[model], path, desc=f"R3M {model}", progress=progress)
    return path
