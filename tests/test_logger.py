"""Logger and atomic writes: JSONL lines, TensorBoard events, MP4 videos, no half-written files."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from lamp.atomic import atomic_path, atomic_write_bytes
from lamp.logger import Logger


def test_scalars_go_to_jsonl_and_tensorboard(tmp_path: Path) -> None:
    with Logger(tmp_path) as logger:
        logger.scalars({"loss": 1.5, "nan": float("nan")}, prefix="train/")
        logger.write(10)
        logger.scalar("loss", 2)
        logger.write(20)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == [{"step": 10, "train/loss": 1.5, "train/nan": None}, {"step": 20, "loss": 2.0}]
    assert list(tmp_path.glob("events.out.tfevents.*"))
    with Logger(tmp_path, tensorboard=False) as logger:  # a resumed run appends to the same file
        logger.scalar("loss", 3)
        logger.write(30)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3


def test_video_is_an_mp4_with_the_frames(tmp_path: Path) -> None:
    frames = np.zeros((6, 33, 47, 3), np.uint8)
    frames[:, :, :20] = 255  # left part white
    with Logger(tmp_path) as logger:
        path = logger.video("policy/rollout", frames, step=7)
        logger.image("first", frames[0], step=7)
    assert path == tmp_path / "videos" / "policy_rollout_000000007.mp4"
    decoded = iio.imread(path)
    assert decoded.shape == (6, 34, 48, 3)  # padded to even sizes for H.264
    assert decoded[0, :, :15].mean() > 200 and decoded[0, :, 25:].mean() < 50
    assert (path.stat().st_mode & 0o777) != 0o600  # a normal file mode, not mkstemp's


def test_bad_media_is_rejected(tmp_path: Path) -> None:
    with Logger(tmp_path, tensorboard=False) as logger:
        with pytest.raises(ValueError, match=r"uint8 \[T, H, W, 3\]"):
            logger.video("v", np.zeros((4, 8, 8, 3), np.float32), 0)
        with pytest.raises(ValueError, match=r"uint8 \[H, W, 3\]"):
            logger.image("i", np.zeros((8, 8), np.uint8), 0)
    assert not list((tmp_path / "videos").iterdir())


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "ckpt.pt"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


def test_resume_cuts_metrics_after_the_checkpoint_step(tmp_path: Path) -> None:
    with Logger(tmp_path) as logger:
        for step in (10, 20, 30, 40):
            logger.scalar("loss", step)
            logger.write(step)
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 50, "lo')  # a line cut by kill -9
    with Logger(tmp_path, keep_until=20) as logger:  # resumed from a checkpoint at step 20: 30.. are done again
        logger.scalar("loss", 0)
        logger.write(30)
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30]
    with Logger(tmp_path, tensorboard=False, keep_until=-1):  # a restart from scratch keeps nothing
        pass
    assert (tmp_path / "metrics.jsonl").read_text() == ""
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_resume_purges_later_tensorboard_events(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with Logger(tmp_path) as logger:
        for step in (10, 20, 30):
            logger.scalar("loss", step)
            logger.write(step)
    with Logger(tmp_path, keep_until=10) as logger:
        logger.scalar("loss", -20)
        logger.write(20)
    events = EventAccumulator(str(tmp_path), purge_orphaned_data=True)
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(10, 10.0), (20, -20.0)]
