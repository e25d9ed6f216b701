"""The run directory's lifecycle: writability checks, the lock, temp-file cleaning, and reading broken checkpoints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lamp.atomic import atomic_copy, atomic_path, clean_temp_files
from lamp.errors import UsageError
from lamp.rundir import LATEST, PREVIOUS, RunLock, check_writable_dir, find_checkpoint, read_checkpoint


def test_writable_dir_refuses_files_and_unwritable_parents(tmp_path: Path) -> None:
    check_writable_dir(tmp_path / "new" / "run")  # a folder that can be created passes
    assert not (tmp_path / "new").exists()  # ... and the check leaves nothing behind
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(UsageError, match=r"--logdir '.*file.txt' is a file, not a folder; choose another --logdir"):
        check_writable_dir(afile)
    with pytest.raises(UsageError, match=r"cannot be created: '.*file.txt' is a file, not a folder"):
        check_writable_dir(afile / "run")
    # /proc refuses new folders even to root; a read-only mount or a foreign home folder fails the same probe
    with pytest.raises(UsageError, match=r"'/proc/lamp-test/run' is not writable \(its nearest existing parent"):
        check_writable_dir(Path("/proc/lamp-test/run"))


def test_second_lock_is_refused_with_the_holder(tmp_path: Path) -> None:
    first = RunLock(tmp_path)
    first.acquire(log=print)
    info = json.loads((tmp_path / "lock").read_text())
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
    for attempt in (RunLock(tmp_path).check_free, lambda: RunLock(tmp_path).acquire(log=print)):
        with pytest.raises(UsageError) as error:
            attempt()
        message = str(error.value)
        assert f"is in use by another lamp run (PID {os.getpid()} on host {socket.gethostname()}" in message
        assert "choose another --logdir" in message and "\n" not in message
    first.release()
    assert (tmp_path / "lock").read_text() == ""  # a clean exit leaves an empty, unlocked file
    messages: list[str] = []
    again = RunLock(tmp_path)
    again.acquire(log=messages.append)
    again.release()
    assert messages == []  # nothing stale to report


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / "lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": 0}))
    RunLock(tmp_path).check_free()  # no live holder: free
    messages: list[str] = []
    lock = RunLock(tmp_path)
    lock.acquire(log=messages.append)
    assert len(messages) == 1 and f"taking over the lock of a run that is gone (PID {pid} on host" in messages[0]
    assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
    lock.release()


def test_temp_files_of_interrupted_writes_are_cleaned(tmp_path: Path) -> None:
    keep = [tmp_path / "metrics.jsonl", tmp_path / "videos" / "clip_000000010.mp4", tmp_path / "lock"]
    for path in keep:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "videos" / "clip_000000020.mp4") as tmp:
        raise RuntimeError("a failed write removes its own temp file")
    assert not tmp.exists()
    leftovers = [  # what a kill -9 during atomic_path leaves (the names atomic_path makes)
        tmp_path / "videos" / ".episode_reward_curve_000000090.k2j3_h4l.tmp.mp4",
        tmp_path / "checkpoints" / ".latest.abcd1234.tmp.pt",
        tmp_path / "replay" / ".chunk_00000001.x_yz12ab.tmp.npz",
        tmp_path / ".config.abcdefgh.tmp.yaml",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    assert sorted(clean_temp_files(tmp_path)) == sorted(leftovers)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in leftovers)


def test_atomic_copy_keeps_the_old_file_when_the_source_changes(tmp_path: Path) -> None:
    src, dst = tmp_path / "latest.pt", tmp_path / "previous.pt"
    src.write_bytes(b"one")
    atomic_copy(src, dst)
    with atomic_path(src) as tmp:  # how checkpoints are replaced: a new file renamed over the old name
        tmp.write_bytes(b"two")
    assert dst.read_bytes() == b"one" and src.read_bytes() == b"two"


def _checkpoint(path: Path, step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"agent": {"config": {}, "model": {"w": torch.ones(4096)}}, "extra": {"step": step}}, path)


@pytest.mark.parametrize("damage", ["cut in half", "zero-filled", "not a checkpoint"])
def test_broken_latest_is_one_line_or_falls_back_to_previous(tmp_path: Path, damage: str) -> None:
    latest = tmp_path / LATEST
    _checkpoint(latest, 2)
    data = latest.read_bytes()
    if damage == "cut in half":
        latest.write_bytes(data[: len(data) // 2])
    elif damage == "zero-filled":
        latest.write_bytes(bytes(len(data)))
    else:
        torch.save({"weights": torch.ones(3)}, latest)
    with pytest.raises(UsageError) as error:
        find_checkpoint(tmp_path)
    message = str(error.value)
    assert f"checkpoint {latest}" in message and f"there is no {PREVIOUS} to fall back to" in message
    assert "start again with a new --logdir" in message and "\n" not in message
    _checkpoint(tmp_path / PREVIOUS, 1)
    warnings: list[str] = []
    path, ckpt = find_checkpoint(tmp_path, log=warnings.append)
    assert path == tmp_path / PREVIOUS and ckpt["extra"]["step"] == 1
    assert len(warnings) == 1 and warnings[0].startswith(f"WARNING: checkpoint {latest}")
    assert f"using {tmp_path / PREVIOUS} instead" in warnings[0]


def test_readable_latest_wins_and_missing_run_is_none(tmp_path: Path) -> None:
    assert find_checkpoint(tmp_path) is None
    _checkpoint(tmp_path / LATEST, 2)
    _checkpoint(tmp_path / PREVIOUS, 1)
    path, ckpt = find_checkpoint(tmp_path)
    assert path == tmp_path / LATEST and ckpt["extra"]["step"] == 2
    with pytest.raises(UsageError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pt")
