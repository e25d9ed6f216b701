"""Replay: sequence sampling across episode boundaries, capacity eviction, disk round-trip, corrupt chunks."""

import numpy as np
import pytest

from lamp.agent.replay import Replay, bytes_per_step
from lamp.errors import UsageError

SPACE = {"image": (8, 8, 3), "state": (1,)}


def episode(start: int, length: int) -> dict[str, np.ndarray]:
    """Steps whose `state` is their global index, so samples can be checked for contiguity."""
    idx = np.arange(start, start + length)
    return {
        "image": np.broadcast_to((idx % 256).astype(np.uint8)[:, None, None, None], (length, 8, 8, 3)).copy(),
        "state": idx[:, None].astype(np.float32),
        "action": np.zeros((length, 2), np.float32),
        "reward": idx.astype(np.float32),
        "is_first": idx == start,
        "is_last": idx == start + length - 1,
        "is_terminal": np.zeros(length, bool),
    }


def fill(replay: Replay, lengths) -> int:
    pos = 0
    for n in lengths:
        replay.add_episode(episode(pos, n))
        pos += n
    return pos


def test_stores_each_step_once_uint8_and_counts_bytes():
    replay = Replay({"capacity": 100, "chunk": 16}, SPACE, action_dim=2)
    fill(replay, [10, 7])
    assert len(replay) == 17
    assert replay.chunks[0]["image"].dtype == np.uint8
    # image 192 + state 4 + action 8 + reward 4 + 3 flags
    assert bytes_per_step(replay.spec) == 192 + 4 + 8 + 4 + 3


def test_sampling_windows_are_contiguous_and_mark_episode_starts():
    replay = Replay({"capacity": 1000, "chunk": 16}, SPACE, action_dim=2, seed=1)
    starts = {0, 10, 17, 40}
    fill(replay, [10, 7, 23, 30])
    sample = replay.sample(batch=64, length=12)
    assert sample["image"].shape == (64, 12, 8, 8, 3) and sample["is_first"].shape == (64, 12)
    idx = sample["state"][..., 0].astype(int)
    assert (np.diff(idx, axis=1) == 1).all()  # consecutive steps, also across chunk borders
    assert np.array_equal(sample["is_first"], np.isin(idx, list(starts)))
    assert idx.min() >= 0 and idx.max() <= 69
    assert np.isin(idx[:, 0], list(range(0, 70 - 12 + 1))).all()
    with pytest.raises(ValueError, match="fewer than one sequence"):
        replay.sample(2, 500)


def test_capacity_evicts_oldest_chunks():
    replay = Replay({"capacity": 32, "chunk": 8}, SPACE, action_dim=2, seed=0)
    fill(replay, [25] * 8)  # 200 steps
    assert 32 <= len(replay) <= 32 + 8
    idx = replay.sample(200, 4)["state"][..., 0]
    assert idx.min() >= 200 - 40 and idx.max() == pytest.approx(199, abs=8)


def test_relabel_hook_rewrites_rewards_before_insertion():
    seen = []

    def relabel(ep):
        seen.append(len(ep["reward"]))
        return {**ep, "reward": np.full_like(ep["reward"], 7.0)}

    replay = Replay({"capacity": 100, "chunk": 16}, SPACE, action_dim=2, relabel=relabel)
    ep = episode(0, 5)
    for t in range(5):
        replay.add({k: v[t] for k, v in ep.items()}, worker=3)
        assert len(replay) == (5 if t == 4 else 0)  # nothing is visible before the episode ends
    assert seen == [5]
    assert (replay.sample(4, 5)["reward"] == 7.0).all()


def test_disk_round_trip_and_bounded_cache(tmp_path):
    cfg = {"capacity": 1000, "chunk": 8, "cache_chunks": 2, "directory": str(tmp_path / "replay")}
    replay = Replay(cfg, SPACE, action_dim=2, seed=5)
    fill(replay, [13, 20, 9])  # 42 steps = 5 full chunks + 2 steps
    assert len(replay.chunks) <= 2
    replay.flush()
    state = replay.state_dict()
    again = Replay(cfg, SPACE, action_dim=2, seed=99)
    assert len(again) == 42 and len(again.chunks) <= 2
    again.load_state_dict(state)
    replay.rng.bit_generator.state = state["rng"]
    expected, resumed = replay.sample(6, 10), again.sample(6, 10)
    for key, value in expected.items():
        np.testing.assert_array_equal(resumed[key], value)
    # the resumed buffer keeps appending where it stopped
    again.add_episode(episode(42, 6))
    assert len(again) == 48 and (np.diff(again.sample(20, 48)["state"][..., 0], axis=1) == 1).all()
    assert not [p for p in (tmp_path / "replay").iterdir() if ".tmp" in p.name]


def test_corrupt_chunk_is_skipped_with_warning(tmp_path):
    cfg = {"capacity": 1000, "chunk": 8, "directory": str(tmp_path)}
    replay = Replay(cfg, SPACE, action_dim=2)
    fill(replay, [32])
    (tmp_path / "chunk_00000001.npz").write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="chunk_00000001.npz"):
        again = Replay(cfg, SPACE, action_dim=2)
    assert len(again) == 24  # only the broken chunk's 8 steps are lost
    sample = again.sample(100, 8)
    idx = sample["state"][..., 0]
    assert not np.isin(idx, np.arange(8, 16)).any()
    assert sample["is_first"][idx == 16].all()  # no window stitches across the lost steps silently


def test_memory_budget_prints_and_refuses(tmp_path, capsys):
    replay = Replay({"capacity": 1000, "chunk": 8, "directory": str(tmp_path)}, SPACE, action_dim=2)
    budget = replay.memory_budget(model_bytes=1000)
    assert budget["bytes_per_step"] == 211 and "B/step" in capsys.readouterr().out
    huge = Replay({"capacity": 10**15, "chunk": 8, "directory": str(tmp_path / "b")}, SPACE, action_dim=2)
    with pytest.raises(UsageError, match=r"replay\.capacity"):
        huge.memory_budget(print_fn=None)
    ram_only = Replay({"capacity": 10**13, "chunk": 8}, SPACE, action_dim=2)
    with pytest.raises(UsageError, match="RAM"):
        ram_only.memory_budget(print_fn=None)


def test_loading_a_checkpoint_pointer_drops_the_steps_written_after_it(tmp_path):
    cfg = {"capacity": 1000, "chunk": 8, "cache_chunks": 2, "directory": str(tmp_path)}
    replay = Replay(cfg, SPACE, action_dim=2, seed=3)
    fill(replay, [13])
    replay.flush()
    state = replay.state_dict()  # the checkpoint: 13 steps
    replay.add_episode(episode(13, 20))  # a run that went on to step 33 and was killed before its next checkpoint
    replay.flush()
    assert sorted(p.name for p in tmp_path.glob("chunk_*.npz"))[-1] == "chunk_00000004.npz"
    resumed = Replay(cfg, SPACE, action_dim=2)
    assert len(resumed) == 33
    resumed.load_state_dict(state)
    assert resumed.dropped == 20 and len(resumed) == 13 and resumed.end == 13
    assert sorted(p.name for p in tmp_path.glob("chunk_*.npz")) == ["chunk_00000000.npz", "chunk_00000001.npz"]
    with np.load(tmp_path / "chunk_00000001.npz") as chunk:
        assert len(chunk["reward"]) == 5  # the boundary chunk is cut to the checkpoint's steps, on disk too
    assert resumed.sample(50, 4)["state"].max() <= 12
    resumed.add_episode(episode(13, 6))  # the resumed run appends where the checkpoint stopped
    resumed.flush()
    again = Replay(cfg, SPACE, action_dim=2)
    assert len(again) == 19 and (np.diff(again.sample(10, 19)["state"][..., 0], axis=1) == 1).all()


def test_truncate_to_zero_and_to_a_chunk_border():
    replay = Replay({"capacity": 100, "chunk": 8}, SPACE, action_dim=2)
    fill(replay, [20])
    assert replay.truncate(16) == 4 and len(replay) == 16 and 2 not in replay.chunks
    assert replay.truncate(30) == 0 and len(replay) == 16
    assert replay.truncate(0) == 16 and len(replay) == 0 and replay.end == 0
    fill(replay, [9])
    assert len(replay) == 9 and (replay.sample(4, 9)["state"][..., 0] == np.arange(9)).all()


def test_storage_budget_counts_only_the_steps_a_run_can_store(tmp_path, monkeypatch):
    import collections
    import shutil

    from lamp.agent.replay import step_spec, storage_budget

    spec = step_spec(SPACE, 2)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 0, 100 * 211))
    cfg = {"capacity": 10**6, "chunk": 8, "directory": str(tmp_path / "not" / "yet")}
    lines: list[str] = []
    budget = storage_budget(spec, cfg, steps=100, print_fn=lines.append)  # min(capacity, steps) = 100 steps fit
    assert budget["replay_bytes"] == 100 * 211 and "(min of replay.capacity 1,000,000 and run.steps 100)" in lines[0]
    assert not (tmp_path / "not").exists()  # checked without creating anything
    with pytest.raises(UsageError, match=r"replay needs .* GiB disk in .* but .* GiB is free"):
        storage_budget(spec, cfg, steps=101, print_fn=None)
    with pytest.raises(UsageError, match="GiB disk"):  # the two checkpoints count too
        storage_budget(spec, cfg, steps=100, model_bytes=1, print_fn=None)
