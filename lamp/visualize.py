"""Pictures a researcher checks a run by: rollouts with their reward curve, top-reward frames, open-loop predictions,
and the evaluation curves of the learning checks.

The per-frame pictures are plain numpy on uint8 frames (no plotting library per frame), so videos are cheap to make
during training; only the evaluation plot uses matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

OPEN_LOOP_CONTEXT = 5  # observed frames before the world model's open-loop video imagines on its own
CURVE_COLOR = np.array([255, 200, 40], np.uint8)
MARKER_COLOR = np.array([255, 60, 60], np.uint8)


def reward_strip_video(frames: np.ndarray, rewards: np.ndarray, strip_height: int | None = None) -> np.ndarray:
    """Frames [T,H,W,3] with the whole episode's reward curve drawn under each one and a marker at the current step.

    The curve is min-max scaled to the strip; the marker shows which point of the curve the frame above belongs to.
    """
    frames = np.asarray(frames, np.uint8)
    rewards = np.asarray(rewards, np.float64).reshape(-1)
    t_len, height, width, _ = frames.shape
    if len(rewards) != t_len:
        raise ValueError(f"need one reward per frame, got {len(rewards)} rewards for {t_len} frames")
    strip_h = strip_height or max(16, height // 2)
    values = np.nan_to_num(rewards, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = values.min(), values.max()
    scale = (values - low) / (high - low) if high > low else np.full_like(values, 0.5)
    xs = np.linspace(0, width - 1, t_len).round().astype(int)
    ys = ((1.0 - scale) * (strip_h - 3) + 1).round().astype(int)
    strip = np.full((strip_h, width, 3), 24, np.uint8)
    column_y = np.interp(np.arange(width), xs, ys).round().astype(int) if t_len > 1 else np.full(width, ys[0])
    for x in range(width):  # fill between neighbouring columns so steep parts of the curve have no gaps
        lo, hi = sorted((column_y[x], column_y[max(x - 1, 0)]))
        strip[lo : hi + 1, x] = CURVE_COLOR
    out = np.empty((t_len, height + strip_h, width, 3), np.uint8)
    out[:, :height] = frames
    out[:, height:] = strip
    for t in range(t_len):
        out[t, height:, xs[t]] = MARKER_COLOR
        out[t, height + ys[t] - 1 : height + ys[t] + 2, max(0, xs[t] - 1) : xs[t] + 2] = MARKER_COLOR
    return out


def image_grid(images: list[np.ndarray], columns: int = 8, pad: int = 2) -> np.ndarray:
    """Tile equally sized uint8 [H,W,3] images into one image, row by row."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    height, width, _ = images[0].shape
    rows = -(-len(images) // columns)
    cols = min(columns, len(images))
    grid = np.zeros((rows * (height + pad) - pad, cols * (width + pad) - pad, 3), np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        grid[r * (height + pad) : r * (height + pad) + height, c * (width + pad) : c * (width + pad) + width] = image
    return grid


class TopFrames:
    """The k highest-reward frames seen so far per group (the episode's object class), each with the prompt it was
    scored against: what the scorer likes most. Grouping by class keeps memory and TensorBoard tags bounded (a style
    expands to thousands of prompts)."""

    def __init__(self, k: int = 8) -> None:
        self.k = k
        self.best: dict[str, list[tuple[float, np.ndarray, str]]] = {}

    def update(self, group: str, frames: np.ndarray, rewards: np.ndarray, prompt: str = "") -> None:
        entries = self.best.setdefault(group, [])
        order = np.argsort(rewards)[::-1][: self.k]
        entries.extend((float(rewards[i]), np.asarray(frames[i], np.uint8).copy(), prompt) for i in order)
        entries.sort(key=lambda e: -e[0])
        del entries[self.k :]

    def grids(self, max_groups: int = 4) -> dict[str, np.ndarray]:
        """One image grid per group (groups with the highest best reward first)."""
        ranked = sorted(self.best.items(), key=lambda item: -item[1][0][0])[:max_groups]
        return {group: image_grid([frame for _, frame, _ in entries]) for group, entries in ranked}


def side_by_side(truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """[T,H,W,3] truth | prediction | absolute error, for the world model's open-loop video."""
    truth, prediction = np.asarray(truth, np.uint8), np.asarray(prediction, np.uint8)
    error = np.abs(truth.astype(np.int16) - prediction.astype(np.int16)).astype(np.uint8)
    return np.concatenate([truth, prediction, error], axis=2)


LABEL_HEIGHT = 18  # px of the text line above (and, with a footer, below) a labelled video
MIN_VIDEO_HEIGHT = 256  # px: a 64 px camera frame is upscaled 4x, nearest neighbour, so a person can see it


def labelled(frames: np.ndarray, panes: list[str], footer: str = "", min_height: int = MIN_VIDEO_HEIGHT) -> np.ndarray:
    """Frames [T,H,W,3] made of equal-width panes side by side, enlarged by an integer factor (nearest neighbour:
    pixels stay pixels) to at least `min_height`, with one label line above each pane and an optional footer line.

    For the videos a person opens; the replay and the metrics keep the original frames."""
    frames = np.asarray(frames, np.uint8)
    _, height, width, _ = frames.shape
    if not panes or width % len(panes):
        raise ValueError(f"{len(panes)} pane labels do not split a {width} px wide frame into equal panes")
    scale = max(1, -(-min_height // height))
    big = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    pane_width = big.shape[2] // len(panes)
    header = np.concatenate([text_line(label, pane_width) for label in panes], axis=1)
    rows = [np.broadcast_to(header, (len(big), *header.shape)), big]
    if footer:
        line = text_line(footer, big.shape[2])
        rows.append(np.broadcast_to(line, (len(big), *line.shape)))
    return np.ascontiguousarray(np.concatenate(rows, axis=1))


def text_line(text: str, width: int, height: int = LABEL_HEIGHT) -> np.ndarray:
    """A [height, width, 3] uint8 strip with `text` in light grey on dark grey, cut with '…' to fit the width."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=height - 5)
    image = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(image)
    shown = text
    while shown and draw.textlength(shown, font=font) > width - 6:
        shown = shown[:-2] + "…" if len(shown) > 1 else ""
    draw.text((3, height // 2), shown, fill=(230, 230, 230), font=font, anchor="lm")
    return np.asarray(image, np.uint8)


def plot_eval_curves(
    curves: dict[str, list[tuple[int, float]]],
    returns: dict[str, list[tuple[int, float]]],
    references: dict[str, dict[str, float]],
    path: Path,
    task: str,
    xlabel: str = "fine-tuning env steps",
) -> None:
    """Evaluation success (left) and return (right) per run, with the random policy's and the expert's levels: while
    success is still 0 everywhere, the return shows whether a run is moving from the random level toward the expert's.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for ax, data, key, label in (
        (axes[0], curves, "success_rate", "evaluation success"),
        (axes[1], returns, "return", "evaluation return"),
    ):
        for name, curve in data.items():
            if curve:
                ax.plot(*zip(*curve, strict=True), marker="o", label=name)
        _reference_levels(ax, references, key, xlabel, f"{task} {label}")
    _save_curves(fig, axes, path)


def _reference_levels(ax: Any, references: dict[str, dict[str, float]], key: str, xlabel: str, ylabel: str) -> None:
    """The random policy's and the scripted expert's levels, axis labels and grid of one learning-curve panel."""
    ax.axhline(references["random_policy"][key], color="grey", linestyle="--", label="random policy")
    if "scripted_expert" in references:
        ax.axhline(references["scripted_expert"][key], color="green", linestyle=":", label="scripted expert")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _save_curves(fig: Any, axes: Any, path: Path) -> None:
    """Success axis in [0, 1], legend on the return panel, written atomically as PNG."""
    import matplotlib.pyplot as plt

    from lamp.atomic import atomic_path

    axes[0].set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_arm_curves(
    curves: dict[str, dict[str, dict[int, list[tuple[int, float]]]]],
    references: dict[str, dict[str, float]],
    path: Path,
    task: str,
    target: float | None = None,
    xlabel: str = "fine-tuning env steps",
) -> None:
    """Evaluation success (left) and return (right) per arm over seeds: the mean with its 95% bootstrap band, every
    seed's own curve thin behind it, and the random policy's and the scripted expert's levels.

    `curves` is {"success"|"return": {arm: {seed: [(step, value), ...]}}}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lamp.stats import bootstrap_ci

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, kind, key, label in (
        (axes[0], "success", "success_rate", "evaluation success"),
        (axes[1], "return", "return", "evaluation return"),
    ):
        for i, (arm, by_seed) in enumerate(curves[kind].items()):
            color = colors[i % len(colors)]
            for curve in by_seed.values():
                if curve:
                    ax.plot(*zip(*curve, strict=True), color=color, alpha=0.3, linewidth=0.8)
            steps = sorted({s for c in by_seed.values() for s, _ in c})
            stats = [bootstrap_ci([dict(c).get(s, float("nan")) for c in by_seed.values()]) for s in steps]
            if steps:
                mean, low, high = (np.array(v) for v in zip(*stats, strict=True))
                ax.plot(steps, mean, color=color, marker="o", markersize=3, label=f"{arm} ({len(by_seed)} seeds)")
                ax.fill_between(steps, low, high, color=color, alpha=0.2)
        _reference_levels(ax, references, key, xlabel, f"{task} {label}")
    if target is not None:
        axes[0].axhline(target, color="black", linewidth=0.6, alpha=0.5)
    _save_curves(fig, axes, path)


def open_loop_video(agent: Any, replay: Any, context: int = OPEN_LOOP_CONTEXT, length: int = 32) -> np.ndarray | None:
    """The world model's open-loop prediction of a replayed clip: `context` observed frames, then imagined ones
    driven by the recorded actions; returned as truth | prediction | error for the `image` key."""
    import torch

    wm = agent.world_model
    if "image" not in wm.image_keys or len(replay) < length:
        return None
    with torch.no_grad():
        batch = agent.to_tensors(replay.sample(1, length))
        embed = wm.encode(batch)
        is_first = batch["is_first"].clone()
        is_first[:, 0] = True
        post = wm.rssm.observe(
            embed[:, :context], wm.prev_actions(batch["action"].float())[:, :context], is_first[:, :context]
        )
        stoch, deter = post["stoch"][:, -1], post["deter"][:, -1]
        feats = [wm.feat(post["stoch"][:, t], post["deter"][:, t]) for t in range(context)]
        for t in range(context, length):
            stoch, deter = wm.rssm.imagine_step(stoch, deter, batch["action"][:, t - 1].float())
            feats.append(wm.feat(stoch, deter))
        decoded = wm.image_decoder(torch.cat(feats)).float()  # (T, H, W, C) in [-0.5, 0.5]
    channels = batch["image"].shape[-1]
    prediction = ((decoded[..., :channels] + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    truth = batch["image"][0].cpu().numpy()
    return side_by_side(truth, prediction.reshape(truth.shape))
