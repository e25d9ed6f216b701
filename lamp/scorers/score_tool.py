"""`lamp score`: per-frame rewards of a video, frame folder or saved episode against prompts -> CSV + PNG.

The cheap check before a GPU-week: does the reward rise on a video where the prompt is being carried out, and stay
low for a mismatched prompt? Frame 0 of the input is the initial frame o_0 of LAMP's reward.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lamp.atomic import atomic_path, atomic_write_bytes
from lamp.errors import UsageError
from lamp.scorers.base import FrameScorer, check_frames, check_prompts

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v"}
IMAGE_KEYS = ("image", "image_front", "front", "rgb", "frames", "pixels")


def _natural_key(path: Path) -> list:
    """frame_2.png sorts before frame_10.png."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _as_rgb_uint8(frames: np.ndarray, source: Path) -> np.ndarray:
    if frames.dtype != np.uint8:
        raise UsageError(f"{source} holds {frames.dtype} pixels; lamp score needs 8-bit RGB (uint8)")
    if frames.ndim == 3:  # grayscale stack
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim == 4 and frames.shape[-1] == 4:  # RGBA: the alpha channel carries no scene content
        frames = frames[..., :3]
    return check_frames(np.ascontiguousarray(frames), str(source))


def _load_npz(path: Path, key: str | None) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if key is None:
                key = next((k for k in IMAGE_KEYS if k in keys), None)
            if key is None or key not in keys:
                raise UsageError(f"{path} has no image array {key or ''}; pass --key NAME, one of: {', '.join(keys)}")
            return np.asarray(data[key])
    except (OSError, ValueError, EOFError) as err:
        raise UsageError(f"{path} is not a readable .npz episode ({str(err).splitlines()[0][:100]})") from None


def check_view(frames: np.ndarray, source: str | Path, image_size: int, resize: int) -> None:
    """Refuse frames that are not one camera view of the size training scores (scorer.image_size, unless
    scorer.resize rescales them): lamp's own training videos are composites (a reward strip under the frames, panes
    side by side) and would be scored as pictures of something else."""
    height, width = frames.shape[1:3]
    if height != width and resize == 0:
        raise UsageError(
            f"{source}: frames are {width}x{height}, not one square camera view (lamp's training videos add a reward "
            "strip or sit panes side by side); score a plain video, e.g. LOGDIR/eval/TASK-seedS/videos/*.mp4 from "
            "`lamp eval`, crop it, or pass --scorer.resize 224 to rescale every frame"
        )
    if resize == 0 and height != image_size:
        raise UsageError(
            f"{source}: frames are {width}x{height} but training scores {image_size}x{image_size} frames "
            f"(scorer.image_size); `lamp eval` videos have that size, or pass --scorer.image_size {height} "
            "(or --scorer.resize 224) to score these as they are"
        )


def load_frames(source: str | Path, key: str | None = None) -> np.ndarray:
    """uint8 [T+1,H,W,3] frames from a video file, a folder of images, or an .npz episode (array `key`)."""
    import imageio.v3 as iio

    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not files:
            npz = sorted(path.glob("*.npz"), key=_natural_key)
            if len(npz) == 1:
                return _load_npz_frames(npz[0], key)
            raise UsageError(f"{path} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))}); pass a video or .npz")
        try:
            images = [iio.imread(f) for f in files]
        except Exception as err:  # imageio raises plugin-specific errors
            raise UsageError(f"cannot decode an image in {path} ({str(err).splitlines()[0][:100]})") from None
        if len({im.shape for im in images}) > 1:
            raise UsageError(f"images in {path} have different sizes; resize them to one size first")
        return _as_rgb_uint8(np.stack(images), path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist; pass a video file, a folder of frames or an .npz episode")
    if path.suffix.lower() == ".npz":
        return _load_npz_frames(path, key)
    if path.suffix.lower() not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        raise UsageError(f"{path} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))}), image folder or .npz episode")
    try:
        frames = iio.imread(path, index=None)
    except Exception as err:  # ffmpeg/pillow decoding errors have no common base class
        raise UsageError(f"cannot decode video {path} ({str(err).splitlines()[0][:100]})") from None
    if frames.ndim == 3 and frames.shape[-1] in (3, 4) and path.suffix.lower() in IMAGE_SUFFIXES:
        frames = frames[None]  # a single image
    return _as_rgb_uint8(frames, path)


def _load_npz_frames(path: Path, key: str | None) -> np.ndarray:
    """An .npz episode, or a replay chunk (LOGDIR/replay/chunk_*.npz): then its first episode that starts in it."""
    frames = _load_npz(path, key)
    starts = _episode_starts(path, len(frames))
    if starts is not None:
        if len(starts) == 0:
            raise UsageError(f"{path} is a replay chunk with no episode start in it; pass an earlier chunk")
        ends = [*starts[1:], len(frames)]
        frames = frames[starts[0] : ends[0]]
    return _as_rgb_uint8(frames, path)


def _episode_starts(path: Path, length: int) -> list[int] | None:
    """Indices of is_first in a replay chunk, or None for a plain episode file (no is_first array)."""
    with np.load(path, allow_pickle=False) as data:
        if "is_first" not in data or len(data["is_first"]) != length:
            return None
        return [int(i) for i in np.flatnonzero(data["is_first"])]


def score_frames(scorer: FrameScorer, frames: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
    """Rewards [T+1, P]: every frame is encoded once and scored against every prompt (frame 0 = initial frame)."""
    prompts = check_prompts(prompts)
    scorer.embed_prompts(prompts)  # one batch, as the original encoded its prompt list at start-up
    emb = scorer.embed_frames(frames)
    e0 = emb[:1].expand(len(emb), -1)
    columns = []
    for p in prompts:
        r = scorer.score_embeddings(e0, emb, [p] * len(emb)).cpu().numpy().astype(np.float32)
        columns.append(scorer.standardizer(p, r) if scorer.standardizer is not None else r)
    return np.stack(columns, axis=1)


def write_outputs(rewards: np.ndarray, prompts: Sequence[str], out: str | Path, title: str) -> tuple[Path, Path]:
    """rewards.csv (frame + one column per prompt) and rewards.png (one curve per prompt), each written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder")
    out.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["frame", *prompts])
    for t, row in enumerate(rewards):
        writer.writerow([t, *(f"{v:.6g}" for v in row)])
    csv_path, png_path = out / "rewards.csv", out / "rewards.png"
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for i, p in enumerate(prompts):
        ax.plot(np.arange(len(rewards)), rewards[:, i], label=p, linewidth=1.5)
    ax.set_xlabel("frame t (0 = initial frame)")
    ax.set_ylabel("reward")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    atomic_write_bytes(csv_path, text.getvalue().encode("utf-8"))
    return csv_path, png_path


def run_score(
    source: str | Path, prompts: Sequence[str], out: str | Path, scorer: FrameScorer, key: str | None = None
) -> tuple[Path, Path, np.ndarray]:
    """Load, score, write. Inputs are checked before the (slow) scorer runs and before anything is written."""
    prompts = check_prompts(prompts)
    frames = load_frames(source, key)
    rewards = score_frames(scorer, frames, prompts)
    title = f"{Path(source).name}: {scorer.kind} rewards, {len(frames)} frames"
    csv_path, png_path = write_outputs(rewards, prompts, out, title)
    return csv_path, png_path, rewards
