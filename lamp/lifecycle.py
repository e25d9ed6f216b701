"""How a run stops: Ctrl-C and SIGTERM, a full disk; and how a job that starts runs as child processes (`lamp
ablate`, the benchmarks) passes a stop on to them.

The first SIGINT/SIGTERM during the loop asks it to stop after the current step (the loop then saves a checkpoint and
exits 130/143); a second one, or one before the loop started, stops at once. A write that fails because the disk is
full becomes one `DiskFull` line naming the last good checkpoint (every write is atomic, so it is intact). A parent
inside `forward_stops` hands SIGINT/SIGTERM/SIGHUP on to every child started with `run_child` (each in its own
process group, so a terminal's Ctrl-C reaches it once, through the parent), starts no new child, and waits.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lamp.errors import UsageError

LOW_DISK_BYTES = 16 * 2**20  # a write that fails with less free space than this is reported as a full disk


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM. `graceful`: raised by the loop between two steps, so the state is consistent and a
    checkpoint is saved; otherwise (a second signal, or one before training started) the run stops where it is."""

    def __init__(self, signum: int, graceful: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.graceful = signum, graceful


class DiskFull(RuntimeError):
    """The disk filled up while the run was writing; the last good checkpoint is intact (every write is atomic)."""


class Stops:
    """SIGINT/SIGTERM while a run executes: inside the loop the first one sets `requested` (the loop and the update
    loop check it between steps); otherwise the signal raises `Interrupted` at once."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log
        self.requested: int | None = None
        self.in_loop = False

    def on_signal(self, signum: int, frame: Any) -> None:
        if self.in_loop and self.requested is None:
            self.requested = signum
            self.log(f"{signal.Signals(signum).name}: stopping after this step and saving a checkpoint ...")
            return
        raise Interrupted(signum)

    def check(self) -> None:
        """Between two steps of the loop: a requested stop becomes a graceful `Interrupted`."""
        if self.requested is not None:
            raise Interrupted(self.requested, graceful=True)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Route SIGINT and SIGTERM here (main thread only; other threads keep Python's handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def disk_is_full(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return shutil.disk_usage(path).free < LOW_DISK_BYTES
    return False


@contextlib.contextmanager
def full_disk_is_one_line(
    run_dir: Path, checkpoint: Path, passthrough: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """Turn a write that failed on a full disk (ENOSPC, EDQUOT, or any error while almost no space is left: ffmpeg
    and torch's zip writer report it their own way) into `DiskFull`; other errors, and `passthrough` ones whatever
    the disk, pass unchanged."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT) or disk_is_full(run_dir):
            raise _disk_full(run_dir, checkpoint, e) from None
        raise
    except (UsageError, KeyboardInterrupt, *passthrough):
        raise
    except Exception as e:
        if disk_is_full(run_dir):
            raise _disk_full(run_dir, checkpoint, e) from None
        raise


def _disk_full(run_dir: Path, checkpoint: Path, error: BaseException) -> DiskFull:
    detail = (str(error).strip().splitlines() or [error.__class__.__name__])[0][:200]
    last = f"the last good checkpoint is {checkpoint}" if checkpoint.is_file() else "no checkpoint yet"
    return DiskFull(
        f"the disk of {run_dir} is full ({detail}); {last}; free some space and re-run the same command to resume"
    )


# ------------------------------------------------------------------------------------------- child processes
_children: set[subprocess.Popen] = set()
_children_lock = threading.RLock()  # re-entrant: the handler may interrupt a holder in the main thread
_stopped: list[int] = []  # the signal a `forward_stops` parent received, if any


def run_child(cmd: list[str], **kwargs: Any) -> int:
    """Run `cmd` to its end and return its exit code; inside `forward_stops` a stop reaches it, and after a stop no
    new child starts (128 + the signal, as a shell reports a run killed by it)."""
    with _children_lock:
        if _stopped:
            return 128 + _stopped[0]
        proc = subprocess.Popen(cmd, process_group=0, **kwargs)
        _children.add(proc)
    try:
        return proc.wait()
    finally:
        with _children_lock:
            _children.discard(proc)


@contextlib.contextmanager
def forward_stops() -> Iterator[list[int]]:
    """While the body runs (main thread only), SIGINT, SIGTERM and SIGHUP are passed on to every `run_child` child
    (SIGHUP as SIGTERM: a closed terminal stops the runs cleanly too). Yields the list that holds the received
    signal, so the caller can exit with 128 + it once its children have saved and exited."""
    if threading.current_thread() is not threading.main_thread():
        yield _stopped
        return

    def forward(signum: int, frame: Any) -> None:
        with _children_lock:
            if not _stopped:
                _stopped.append(signum)
            children = list(_children)
        for proc in children:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    _stopped.clear()  # a stop belongs to one job: a later one in the same process starts its runs again
    previous = {sig: signal.signal(sig, forward) for sig in signals}
    try:
        yield _stopped
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
