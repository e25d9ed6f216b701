"""Replay: every step stored once, in fixed-size chunks written atomically under LOGDIR/replay/.

Step t holds o_t, the action chosen at o_t, and reward/is_first/is_last/is_terminal of arriving at o_t. Episodes are
buffered per worker until they finish, so a `relabel` hook (the scorer) can rewrite their rewards before insertion.
Sampling draws uniform windows of `length` consecutive steps, which may cross episode boundaries (is_first marks them).
Only `cache_chunks` chunks stay in RAM; older ones are reloaded from disk on demand. Capacity is counted in steps and
enforced by dropping whole oldest chunks. Loading a checkpoint's pointer drops the steps written after that checkpoint,
so replay and checkpoint always agree on a resume.
"""

from __future__ import annotations

import shutil
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lamp.agent.config import REPLAY_DEFAULTS, _merge, _plain
from lamp.atomic import atomic_path
from lamp.errors import UsageError

FLAGS = ("is_first", "is_last", "is_terminal")


def step_spec(obs_space: dict[str, tuple[int, ...]], action_dim: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and storage dtype of every stored key: images uint8, vectors float32, flags bool."""
    spec = {}
    for key, shape in obs_space.items():
        spec[key] = (tuple(shape), np.dtype(np.uint8) if len(shape) == 3 else np.dtype(np.float32))
    spec["action"] = ((action_dim,), np.dtype(np.float32))
    spec["reward"] = ((), np.dtype(np.float32))
    for flag in FLAGS:
        spec[flag] = ((), np.dtype(bool))
    return spec


def bytes_per_step(spec: dict[str, tuple[tuple[int, ...], np.dtype]]) -> int:
    return int(sum(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize for shape, dtype in spec.values()))


def _chunk_bytes(directory: Path | None) -> int:
    if directory is None or not directory.is_dir():
        return 0
    return sum(p.stat().st_size for p in directory.glob("chunk_*.npz"))


def storage_budget(
    spec: dict[str, tuple[tuple[int, ...], np.dtype]],
    config: Any,
    model_bytes: int = 0,
    steps: int | None = None,
    print_fn: Callable[[str], None] | None = print,
    used: int | None = None,
) -> dict[str, int]:
    """RAM and disk a replay will need, checked against what this machine has (UsageError if it cannot), without
    creating anything, so a run can call it before writing LOGDIR. A run stores at most min(capacity, steps) steps;
    the disk also holds two checkpoints (latest and previous) of `model_bytes` each."""
    import psutil

    cfg = _plain(_merge(dict(REPLAY_DEFAULTS), _plain(config) or {}))
    capacity, chunk = int(cfg.capacity), int(cfg.chunk)
    directory = Path(cfg.directory) if cfg.directory else None
    stored = capacity if steps is None else min(capacity, int(steps))
    per_step = bytes_per_step(spec)
    total = per_step * stored
    cache_steps = max(2, int(cfg.cache_chunks)) * chunk
    ram_steps = stored if directory is None else min(stored, cache_steps)
    need_ram = per_step * ram_steps + model_bytes
    budget = {"bytes_per_step": per_step, "replay_bytes": total, "ram_bytes": need_ram, "model_bytes": model_bytes}
    if print_fn:
        bound = "" if steps is None else f" (min of replay.capacity {capacity:,} and run.steps {int(steps):,})"
        print_fn(
            f"replay: {per_step} B/step × {stored:,} steps{bound} = {total / 2**30:.2f} GiB on disk; "
            f"RAM {need_ram / 2**30:.2f} GiB (cache {ram_steps:,} steps + "
            f"model/optimiser {model_bytes / 2**20:.1f} MiB)"
        )
    available = psutil.virtual_memory().available
    if need_ram > available:
        raise UsageError(
            f"replay needs {need_ram / 2**30:.1f} GiB RAM but {available / 2**30:.1f} GiB is available: "
            "lower replay.capacity or replay.cache_chunks"
        )
    if directory is not None:
        existing = directory
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        free = shutil.disk_usage(existing).free + (_chunk_bytes(directory) if used is None else used)
        need_disk = total + 2 * model_bytes
        if need_disk > free:
            raise UsageError(
                f"replay needs {need_disk / 2**30:.1f} GiB disk in {directory} but {free / 2**30:.1f} GiB is free: "
                "lower replay.capacity or choose another logdir"
            )
    return budget


class Replay:
    """Chunked step storage with uniform sequence sampling; see the module docstring for the data convention."""

    def __init__(
        self,
        config: Any,
        obs_space: dict[str, tuple[int, ...]],
        action_dim: int,
        seed: int = 0,
        relabel: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
    ) -> None:
        cfg = self.cfg = _plain(_merge(dict(REPLAY_DEFAULTS), _plain(config) or {}))
        self.spec = step_spec(obs_space, action_dim)
        self.chunk = int(cfg.chunk)
        self.capacity = int(cfg.capacity)
        self.max_chunks = max(2, -(-self.capacity // self.chunk) + 1)  # + the chunk being filled
        self.directory = Path(cfg.directory) if cfg.directory else None
        self.cache_chunks = max(2, int(cfg.cache_chunks)) if self.directory else None  # RAM-only keeps all
        self.relabel = relabel
        self.rng = np.random.default_rng(seed)
        self.chunks: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()  # chunk id -> arrays (RAM cache)
        self.first_chunk = 0  # oldest chunk still in the buffer
        self.end = 0  # global index of the next step to write
        self.pending: dict[int, list[dict[str, Any]]] = {}  # worker -> steps of the unfinished episode
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._load_directory()

    # ------------------------------------------------------------------------------------------------ sizes
    @property
    def start(self) -> int:
        return max(self.first_chunk * self.chunk, 0)

    def __len__(self) -> int:
        return self.end - self.start

    def memory_budget(
        self, model_bytes: int = 0, print_fn: Callable[[str], None] | None = print, steps: int | None = None
    ) -> dict[str, int]:
        """Print bytes per step × stored steps and model size; refuse (UsageError) if RAM or disk cannot hold it."""
        return storage_budget(
            self.spec, self.cfg, model_bytes=model_bytes, steps=steps, print_fn=print_fn, used=self._disk_used()
        )

    def _disk_used(self) -> int:
        return _chunk_bytes(self.directory)

    # ------------------------------------------------------------------------------------------------ adding
    def add(self, step: dict[str, Any], worker: int = 0) -> None:
        """Buffer one step of `worker`'s episode; the finished episode is relabelled and inserted at is_last."""
        if step["is_first"] and self.pending.get(worker):
            self.pending[worker] = []  # an episode restarted without is_last: drop the fragment
        self.pending.setdefault(worker, []).append(step)
        if step["is_last"]:
            steps = self.pending.pop(worker)
            self.add_episode({k: np.stack([np.asarray(s[k]) for s in steps]) for k in self.spec})

    def add_episode(self, episode: dict[str, np.ndarray]) -> None:
        """Insert a finished episode (arrays with leading time axis), after the relabel hook."""
        if self.relabel is not None:
            episode = self.relabel(episode)
        length = len(episode["reward"])
        missing = [k for k in self.spec if k not in episode]
        if missing:
            raise ValueError(f"episode is missing keys {missing}")
        written = 0
        while written < length:
            cid, offset = divmod(self.end, self.chunk)
            arrays = self._chunk_for_write(cid)
            n = min(self.chunk - offset, length - written)
            for key, (_, dtype) in self.spec.items():
                arrays[key][offset : offset + n] = np.asarray(episode[key][written : written + n]).astype(dtype)
            written += n
            self.end += n
            if self.end % self.chunk == 0:
                self._write_chunk(cid)

    def _chunk_for_write(self, cid: int) -> dict[str, np.ndarray]:
        if cid not in self.chunks:
            self.chunks[cid] = {k: np.zeros((self.chunk, *s), d) for k, (s, d) in self.spec.items()}
            while cid - self.first_chunk + 1 > self.max_chunks:  # capacity: drop the oldest whole chunk
                self.chunks.pop(self.first_chunk, None)
                if self.directory:
                    (self.directory / f"chunk_{self.first_chunk:08d}.npz").unlink(missing_ok=True)
                self.first_chunk += 1
            self._trim_cache(keep=cid)
        return self.chunks[cid]

    def _trim_cache(self, keep: int) -> None:
        if self.cache_chunks is None:
            return
        for cid in list(self.chunks):
            if len(self.chunks) <= self.cache_chunks:
                break
            if cid != keep and cid != self.end // self.chunk:
                del self.chunks[cid]  # it is on disk already (only full chunks leave the cache)

    def _write_chunk(self, cid: int, length: int | None = None) -> None:
        """Atomically write chunk `cid` (full, or its first `length` steps for a flush)."""
        if self.directory is None:
            return
        arrays = self.chunks[cid]
        length = self.chunk if length is None else length
        with atomic_path(self.directory / f"chunk_{cid:08d}.npz") as tmp:
            np.savez(tmp, **{k: v[:length] for k, v in arrays.items()})

    def flush(self) -> None:
        """Write the partly filled current chunk too, so a checkpoint can resume exactly from disk."""
        cid, offset = divmod(self.end, self.chunk)
        if offset and cid in self.chunks:
            self._write_chunk(cid, offset)

    # ------------------------------------------------------------------------------------------------ loading
    def _read_chunk(self, path: Path) -> dict[str, np.ndarray] | None:
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in self.spec}
            n = len(data["reward"])
            for key, (shape, dtype) in self.spec.items():
                if data[key].shape != (n, *shape) or data[key].dtype != dtype:
                    raise ValueError(f"{key} has shape {data[key].shape} {data[key].dtype}, expected {shape} {dtype}")
            return data
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            warnings.warn(f"replay: skipping corrupt chunk {path.name}: {e}", stacklevel=2)
            return None

    def _load_directory(self) -> None:
        """Resume from the chunks on disk. Corrupt chunks (or a partial one before the last) are skipped with a
        warning; then the rest is re-indexed contiguously and the step after a gap is marked is_first."""
        paths = sorted(self.directory.glob("chunk_*.npz"))
        ids = [int(p.stem.split("_")[1]) for p in paths]
        loaded: list[tuple[int, dict[str, np.ndarray]]] = []
        clean = ids == list(range(ids[0], ids[0] + len(ids))) if ids else True
        gap = False
        for i, (cid, path) in enumerate(zip(ids, paths, strict=True)):
            data = self._read_chunk(path)
            if data is not None and len(data["reward"]) < self.chunk and i < len(paths) - 1:
                warnings.warn(f"replay: skipping partial chunk {path.name} that is not the newest", stacklevel=2)
                data = None
            if data is None:
                gap, clean = True, False
                continue
            if gap:
                data["is_first"][0] = True  # sampled windows must not stitch across the lost steps
                gap = False
            loaded.append((cid, data))
        if not loaded:
            return
        if not clean:  # rewrite under contiguous ids so that chunk id = global step index // chunk holds again
            for path in paths:
                path.unlink()
            loaded = [(loaded[0][0] + i, data) for i, (_, data) in enumerate(loaded)]
        self.first_chunk = loaded[0][0]
        for cid, data in loaded:
            n = len(data["reward"])
            arrays = {k: np.zeros((self.chunk, *s), d) for k, (s, d) in self.spec.items()}
            for k in self.spec:
                arrays[k][:n] = data[k]
            self.chunks[cid] = arrays
            self.end = cid * self.chunk + n
            if not clean:
                self._write_chunk(cid, n)
            self._trim_cache(keep=cid)
        while self.end - self.first_chunk * self.chunk > self.capacity + self.chunk:
            self.chunks.pop(self.first_chunk, None)
            (self.directory / f"chunk_{self.first_chunk:08d}.npz").unlink(missing_ok=True)
            self.first_chunk += 1

    def _get_chunk(self, cid: int) -> dict[str, np.ndarray]:
        if cid in self.chunks:
            self.chunks.move_to_end(cid)
            return self.chunks[cid]
        data = self._read_chunk(self.directory / f"chunk_{cid:08d}.npz")
        if data is None:
            raise RuntimeError(f"replay chunk {cid} became unreadable")
        self.chunks[cid] = data
        self._trim_cache(keep=cid)
        return data

    # ------------------------------------------------------------------------------------------------ sampling
    def sample(self, batch: int, length: int) -> dict[str, np.ndarray]:
        """Uniform windows of `length` consecutive steps: (batch, length, ...) arrays for every key."""
        if len(self) < length:
            raise ValueError(f"replay holds {len(self)} steps, fewer than one sequence of {length}")
        starts = self.rng.integers(self.start, self.end - length + 1, size=batch)
        out = {k: np.empty((batch, length, *s), d) for k, (s, d) in self.spec.items()}
        for b, start in enumerate(starts):
            pos = int(start)
            while pos < start + length:
                cid, offset = divmod(pos, self.chunk)
                n = min(self.chunk - offset, start + length - pos)
                arrays = self._get_chunk(cid)
                for k in self.spec:
                    out[k][b, pos - start : pos - start + n] = arrays[k][offset : offset + n]
                pos += n
        return out

    def state_dict(self) -> dict[str, Any]:
        """Pointer and sampler state for checkpoints (the steps themselves live on disk)."""
        return {"end": self.end, "first_chunk": self.first_chunk, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the sampler and make the buffer agree with the checkpoint: steps written after it (by a run that was
        killed later) are dropped, as the resumed run collects them again; `self.dropped` counts them."""
        self.dropped = self.truncate(int(state["end"]))
        if state["end"] != self.end:
            warnings.warn(f"replay on disk has {self.end} steps, checkpoint expected {state['end']}", stacklevel=2)
        self.rng.bit_generator.state = state["rng"]

    def truncate(self, end: int) -> int:
        """Drop every step from global index `end` on (on disk too); returns how many steps were dropped."""
        if end >= self.end:
            return 0
        dropped = self.end - end
        keep, offset = divmod(end, self.chunk)
        last = (self.end - 1) // self.chunk
        for cid in range(keep + (1 if offset else 0), last + 1):
            self.chunks.pop(cid, None)
            if self.directory:
                (self.directory / f"chunk_{cid:08d}.npz").unlink(missing_ok=True)
        if offset and keep >= self.first_chunk:
            arrays = self._get_chunk(keep) if self.directory else self.chunks[keep]
            full = {k: np.zeros((self.chunk, *s), d) for k, (s, d) in self.spec.items()}
            for key in self.spec:
                full[key][:offset] = arrays[key][:offset]
            self.chunks[keep] = full
            self._write_chunk(keep, offset)
        self.end = end
        if self.first_chunk * self.chunk > end:  # capacity had evicted the steps before `end`: start empty there
            self.first_chunk = keep
            self.end = keep * self.chunk
        self.pending.clear()
        return dropped
