"""The run directory's lifecycle: checks before anything is written, the lock, and reading checkpoints safely.

A run owns LOGDIR: it checks that the folder can be created and written before writing anything, holds an exclusive
lock on LOGDIR/lock while it runs (a second run on the same folder is refused, naming the holder), and reads
checkpoints so that a cut or zero-filled file is one clear line, with checkpoints/previous.pt as the fallback.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lamp.atomic import clean_temp_files
from lamp.errors import UsageError

LATEST = "checkpoints/latest.pt"
PREVIOUS = "checkpoints/previous.pt"
LOCK_FILE = "lock"
DONE_FILE = "done.json"  # written when a run has reached its step budget: {env_steps, episodes, updates, eval_success}


# ------------------------------------------------------------------------------------------------- the folder
def check_writable_dir(path: Path, what: str = "--logdir") -> None:
    """Refuse (one line) a folder that is a file, sits under a file, or cannot be created or written; the probe is
    an empty temp folder that is removed again, so nothing is left behind."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} '{path}' is a file, not a folder; choose another {what}")
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        raise UsageError(
            f"{what} '{path}' cannot be created: '{target}' is a file, not a folder; choose another {what}"
        )
    try:
        probe = tempfile.mkdtemp(prefix=".lamp-write-check-", dir=target)
        os.rmdir(probe)
    except OSError as e:
        where = "" if target == path else f" (its nearest existing parent is '{target}')"
        raise UsageError(
            f"{what} '{path}' is not writable{where}: {e.strerror or e}; choose another {what} or fix the permissions"
        ) from None


# --------------------------------------------------------------------------------------------------- the lock
def _holder_text(info: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return f"PID {info.get('pid', '?')} on host {info.get('host', '?')}, started {started}"


def _read_info(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        info = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (OSError, ValueError):
        return {"pid": "?", "host": "?"}  # a lock file cut short by a crash still counts as held by somebody
    return info if isinstance(info, dict) else {}


class RunLock:
    """An exclusive `flock` on LOGDIR/lock that also records the holder (PID, host, start time).

    The kernel drops the lock when its holder dies (even by kill -9), so a lock file that still names a holder but can
    be locked is stale: it is taken over with a warning. A clean exit empties the file. Where the filesystem has no
    file locks, a live PID on this host still blocks.
    """

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.path = logdir / LOCK_FILE
        self._fd: int | None = None

    def refusal(self, info: dict[str, Any]) -> UsageError:
        return UsageError(
            f"{self.logdir} is in use by another lamp run ({_holder_text(info)}); wait for it to finish, stop it "
            f"(Ctrl-C, or kill {info.get('pid', 'PID')}: both save a checkpoint), or choose another --logdir"
        )

    def check_free(self) -> None:
        """Raise the refusal if a live run holds the lock (a peek: takes nothing, writes nothing)."""
        if not self.path.is_file():
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            self._lock(fd, peek=True)
        finally:
            os.close(fd)

    def acquire(self, log: Callable[[str], None] = print) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            stale = self._lock(fd, peek=False)
        except BaseException:
            os.close(fd)
            raise
        if stale:
            log(f"WARNING: taking over the lock of a run that is gone ({_holder_text(stale)}); it did not exit cleanly")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def _lock(self, fd: int, peek: bool) -> dict[str, Any]:
        """Lock `fd` (and unlock it again when peeking); returns the stale holder's info ({} if none)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self.refusal(_read_info(fd)) from None
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            info = _read_info(fd)  # no file locks here: fall back to asking whether the holder still runs
            if info.get("host") == socket.gethostname() and _pid_alive(info.get("pid")):
                raise self.refusal(info) from None
            return info
        info = _read_info(fd)
        if peek:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return info

    def release(self) -> None:
        """Empty the lock file (a clean exit) and drop the lock."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_done(run_dir: Path) -> dict[str, Any]:
    """The finished run's summary (done.json), {} while it is not finished."""
    path = run_dir / DONE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def tidy(run_dir: Path, replay_dir: Path, resume_path: Path | None, log: Callable[[str], None] = print) -> None:
    """Delete temp files of writes that a kill cut short, and set an unreadable latest.pt aside (resuming from
    previous.pt must not rotate the broken file into previous.pt on the next save)."""
    removed = clean_temp_files(run_dir)
    if replay_dir.is_dir() and not replay_dir.resolve().is_relative_to(run_dir.resolve()):
        removed += clean_temp_files(replay_dir)
    if removed:
        log(f"removed {len(removed)} temp file(s) of interrupted writes (e.g. {removed[0].name})")
    latest = run_dir / LATEST
    if resume_path is not None and resume_path != latest and latest.exists():
        aside = latest.with_name("latest.unreadable.pt")
        os.replace(latest, aside)
        log(f"moved the unreadable checkpoint to {aside}")


# ------------------------------------------------------------------------------------------------ checkpoints
def holds_run(run_dir: Path) -> bool:
    """LOGDIR holds a run to resume: config.yaml and a checkpoint file. Cheap on purpose: the input check reads the
    checkpoint once (previous.pt if latest.pt is broken) and refuses a run whose checkpoints are all unreadable."""
    has_checkpoint = (run_dir / LATEST).is_file() or (run_dir / PREVIOUS).is_file()
    return has_checkpoint and (run_dir / "config.yaml").is_file()


def read_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """torch.load(weights_only=True) with every way a file can be broken (cut short, zero-filled, not a checkpoint)
    turned into one UsageError line naming the file."""
    import torch

    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"checkpoint {path} does not exist") from None
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for damaged files
        detail = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:160]
        raise UsageError(f"checkpoint {path} cannot be read (cut short or corrupt: {detail})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("agent"), dict) or "extra" not in ckpt:
        raise UsageError(f"checkpoint {path} is not a lamp checkpoint (no agent state)")
    return ckpt


def find_checkpoint(run_dir: Path, log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]] | None:
    """The run's newest readable checkpoint: latest.pt, else previous.pt with a warning; None if it has neither.

    Both unreadable is one line naming latest.pt and what to do about it.
    """
    latest, previous = run_dir / LATEST, run_dir / PREVIOUS
    if not latest.is_file() and not previous.is_file():
        return None
    try:
        return latest, read_checkpoint(latest)
    except UsageError as error:
        if not previous.is_file():
            raise UsageError(
                f"{error}; there is no {PREVIOUS} to fall back to: restore the file from a backup, "
                "or start again with a new --logdir"
            ) from None
        try:
            ckpt = read_checkpoint(previous)
        except UsageError as second:
            raise UsageError(
                f"{error}, and {second}; restore them from a backup, or start again with a new --logdir"
            ) from None
        log(f"WARNING: {error}; using {previous} instead (the steps since then are done again)")
        return previous, ckpt
