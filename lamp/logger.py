"""One small logger: scalars to metrics.jsonl and TensorBoard, images to TensorBoard, videos to MP4 and TensorBoard.

JSONL is the source of truth for scripts and plots (one line per `write(step)`, appended, so resumed runs continue the
same file); TensorBoard is for looking. A resumed run passes `keep_until` (its checkpoint's step): later JSONL lines are
cut (atomically) and TensorBoard purges later events, because the run does those steps again.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np

from lamp.atomic import atomic_path, atomic_write_bytes


def _as_uint8_frames(frames: Any) -> np.ndarray:
    """Validate a video as uint8 [T, H, W, 3]; anything else is a programming error worth a clear message."""
    arr = np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"video frames must be uint8 [T, H, W, 3] with T > 0, got {arr.dtype} {arr.shape}")
    return arr


class Logger:
    """Collects scalars between `write(step)` calls; writes each media item as soon as it is logged."""

    def __init__(
        self, logdir: str | Path, tensorboard: bool = True, fps: int = 15, keep_until: int | None = None
    ) -> None:
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        (self.logdir / "videos").mkdir(exist_ok=True)
        self.fps = fps
        self._scalars: dict[str, float] = {}
        self._jsonl: Any = None  # opened on the first write, so media-only loggers leave no empty metrics file
        if keep_until is not None:
            self.cut_metrics(keep_until)
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if keep_until is None else keep_until + 1  # events at steps >= purge are hidden
            self._tb = SummaryWriter(log_dir=str(self.logdir), max_queue=1000, flush_secs=30, purge_step=purge)

    def cut_metrics(self, keep_until: int) -> int:
        """Atomically drop metrics.jsonl lines after step `keep_until` (and lines cut short by a crash); returns how
        many lines were dropped. -1 drops them all (a run that restarts from scratch)."""
        path = self.logdir / "metrics.jsonl"
        if not path.is_file():
            return 0
        kept, dropped = [], 0
        for line in path.read_bytes().splitlines():
            try:
                step = json.loads(line)["step"]
            except (ValueError, KeyError, TypeError):
                step = None
            if isinstance(step, int) and step <= keep_until:
                kept.append(line + b"\n")
            else:
                dropped += 1
        if dropped:
            atomic_write_bytes(path, b"".join(kept))
        return dropped

    def scalar(self, name: str, value: float) -> None:
        """Record a scalar; the last value per name before `write` wins."""
        self._scalars[name] = float(value)

    def scalars(self, values: dict[str, float], prefix: str = "") -> None:
        for name, value in values.items():
            self.scalar(f"{prefix}{name}", value)

    def write(self, step: int) -> dict[str, Any]:
        """Append one JSON line {"step": step, ...scalars} and send the scalars to TensorBoard; returns the line."""
        line: dict[str, Any] = {"step": int(step)}
        for name, value in sorted(self._scalars.items()):
            # JSON has no NaN/inf: a value that is not a finite number is null (pandas reads it as NaN), e.g.
            # train/agent/intr_extr_ratio when the extrinsic term is off; TensorBoard still gets the float
            line[name] = value if math.isfinite(value) else None
            if self._tb is not None:
                self._tb.add_scalar(name, value, step)
        if self._jsonl is None:
            self._jsonl = open(self.logdir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._jsonl.write(json.dumps(line) + "\n")
        self._jsonl.flush()
        self._scalars.clear()
        return line

    def image(self, name: str, image: np.ndarray, step: int) -> None:
        """Log a uint8 [H, W, 3] image to TensorBoard."""
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
            raise ValueError(f"image must be uint8 [H, W, 3], got {arr.dtype} {arr.shape}")
        if self._tb is not None:
            self._tb.add_image(name, arr, step, dataformats="HWC")

    def video(self, name: str, frames: np.ndarray, step: int) -> Path:
        """Write LOGDIR/videos/<name>_<step>.mp4 atomically and show it in TensorBoard as an animated GIF."""
        arr = _as_uint8_frames(frames)
        path = self.logdir / "videos" / f"{name.replace('/', '_')}_{int(step):09d}.mp4"
        # H.264 (yuv420p) needs even sizes: pad odd frames by one edge row/column instead of resizing them.
        padded = np.pad(arr, ((0, 0), (0, arr.shape[1] % 2), (0, arr.shape[2] % 2), (0, 0)), mode="edge")
        with atomic_path(path) as tmp:
            iio.imwrite(tmp, padded, extension=".mp4", fps=self.fps, codec="libx264", macro_block_size=1)
            if tmp.stat().st_size == 0:  # ffmpeg can fail without raising; never leave an empty video behind
                raise RuntimeError(f"ffmpeg wrote nothing for video {path.name} (frames {arr.shape})")
        if self._tb is not None:
            self._tb_gif(name, arr, step)
        return path

    def _tb_gif(self, name: str, frames: np.ndarray, step: int) -> None:
        """TensorBoard shows videos as animated GIFs inside an image summary (what add_video does, minus moviepy)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        buffer = io.BytesIO()
        iio.imwrite(buffer, frames, extension=".gif", duration=1000 / self.fps, loop=0)
        _, h, w, c = frames.shape
        image = Summary.Image(height=h, width=w, colorspace=c, encoded_image_string=buffer.getvalue())
        self._tb._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=name, image=image)]), step)

    def flush(self) -> None:
        if self._jsonl is not None:
            self._jsonl.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
