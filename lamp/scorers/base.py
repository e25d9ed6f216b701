"""What every frozen vision-language scorer shares: input checks, batching, prompt cache, standardisation.

A scorer maps an episode's frames o_0..o_T and a prompt l to rewards r_t = G(φ(o_0), φ(o_t), ψ(l)). Subclasses
supply φ (`_encode_images`), ψ (`_encode_texts`) and G (`_reward`); this class makes that fast: prompt embeddings
are cached, each frame (including o_0) is encoded exactly once, and frames from many episodes share one batch.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from lamp.errors import UsageError


def check_frames(frames: np.ndarray, what: str = "frames") -> np.ndarray:
    """Accept only uint8 [N,H,W,3] arrays: silently rescaling floats or dropping alpha would hide data bugs."""
    if not isinstance(frames, np.ndarray):
        raise UsageError(f"{what} must be a numpy uint8 array [N,H,W,3], got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise UsageError(f"{what} must have dtype uint8 (0..255), got {frames.dtype}; convert with .astype(np.uint8)")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise UsageError(f"{what} must have shape [N,H,W,3] with N >= 1, got {list(frames.shape)}")
    return frames


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """Prompts must be a non-empty list of non-blank strings."""
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise UsageError("the prompt list is empty; give at least one prompt (e.g. --prompt 'pick up the block')")
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise UsageError(f"every prompt must be a non-empty string, got {p!r}")
    return prompts


class RunningStandardizer:
    """Per-prompt running mean/std (Welford, merged per batch) so rewards of different prompts share one scale.

    R3M logits carry large prompt-dependent offsets (e.g. -9 vs -2); standardising per prompt removes them.
    Statistics are updated with the new rewards first, then those rewards are standardised.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        self.eps = eps
        self.stats: dict[str, tuple[int, float, float]] = {}  # prompt -> (count, mean, M2)

    def update(self, prompt: str, values: np.ndarray) -> None:
        n_b = values.size
        if n_b == 0:
            return
        mean_b = float(values.mean())
        m2_b = float(((values - mean_b) ** 2).sum())
        n_a, mean_a, m2_a = self.stats.get(prompt, (0, 0.0, 0.0))
        n = n_a + n_b
        delta = mean_b - mean_a
        self.stats[prompt] = (n, mean_a + delta * n_b / n, m2_a + m2_b + delta**2 * n_a * n_b / n)

    def __call__(self, prompt: str, values: np.ndarray) -> np.ndarray:
        self.update(prompt, values)
        n, mean, m2 = self.stats[prompt]
        std = math.sqrt(m2 / n) if n > 1 else 1.0
        return ((values - mean) / (std + self.eps)).astype(np.float32)

    def state_dict(self) -> dict[str, list[float]]:
        return {p: [float(v) for v in s] for p, s in self.stats.items()}

    def load_state_dict(self, state: dict[str, list[float]]) -> None:
        self.stats = {p: (int(s[0]), float(s[1]), float(s[2])) for p, s in state.items()}


class FrameScorer:
    """Shared fast path. Subclasses set `self.device` modules and implement the three encoder hooks."""

    kind = "base"

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        precision: str = "fp32",
        channels_last: bool = False,
        standardize: bool = False,
    ) -> None:
        if precision not in ("fp32", "bf16"):
            raise UsageError(f"scorer.precision must be fp32 or bf16, got {precision!r}")
        if int(batch_size) < 1:
            raise UsageError(f"scorer.batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(resolve_device(device))
        self.batch_size = int(batch_size)
        self.precision = precision
        self.channels_last = bool(channels_last)
        self.standardizer = RunningStandardizer() if standardize else None
        self._prompt_cache: dict[str, torch.Tensor] = {}

    # --- hooks ---------------------------------------------------------------------------------------------------
    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """float [N,3,H,W] in [0,1] on self.device -> embeddings [N,D]."""
        raise NotImplementedError

    def _encode_texts(self, prompts: list[str]) -> torch.Tensor:
        """One padded batch of prompts -> embeddings [N,L] (fp32)."""
        raise NotImplementedError

    def _reward(self, e0: torch.Tensor, et: torch.Tensor, lang: torch.Tensor) -> torch.Tensor:
        """Initial-frame, current-frame and prompt embeddings (row-aligned) -> rewards [N]."""
        raise NotImplementedError

    def text_batch_dependent(self) -> bool:
        """True when an embedding depends on the other prompts in its batch (R3M's unmasked pooling)."""
        return False

    # --- public API --------------------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def embed_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Embeddings [N,L] for `prompts`, cached by string; a cached prompt is never encoded again.

        Prompts not cached yet are encoded as one padded batch. With a batch-dependent pooling (R3M's `pooling: r3m`)
        that batch decides the embedding, so pretraining first calls this once with every expansion of the style, as
        the original did at start-up with all its prompts; later calls then only read the cache.
        """
        prompts = check_prompts(prompts)
        todo = [p for p in dict.fromkeys(prompts) if p not in self._prompt_cache]
        if todo:
            with torch.inference_mode():
                embedded = self._encode_texts(todo).float()
            for p, e in zip(todo, embedded, strict=True):
                self._prompt_cache[p] = e
        return torch.stack([self._prompt_cache[p] for p in prompts])

    def _prompt_embedding(self, prompts: list[str]) -> torch.Tensor:
        """Cached embeddings; prompts not seen yet are encoded together in one batch."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._prompt_cache]
        if missing:
            self.embed_prompts(missing)
        return torch.stack([self._prompt_cache[p] for p in prompts])

    def _chunks(self, frames: np.ndarray) -> Iterator[torch.Tensor]:
        for start in range(0, len(frames), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[start : start + self.batch_size])).to(self.device)
            # HWC -> CHW as a view; materialise the layout the convolutions were set up for (NHWC or NCHW)
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            yield x.permute(0, 3, 1, 2).float().div_(255.0).contiguous(memory_format=fmt)

    def embed_frames(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 frames [N,H,W,3] -> fp32 embeddings [N,D], encoded in chunks of `batch_size`."""
        frames = check_frames(frames)
        with torch.inference_mode(), self.autocast():
            return torch.cat([self._encode_images(x).float() for x in self._chunks(frames)])

    def score_embeddings(self, e0: torch.Tensor, et: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        """Rewards [N] for row-aligned initial/current embeddings and one prompt per row.

        This is the step-wise entry point for vector envs: keep each env's e0 from `embed_frames` at reset and pass
        the current frames' embeddings here, so no initial frame is ever re-encoded.
        """
        prompts = check_prompts(prompts)
        if not (len(e0) == len(et) == len(prompts)):
            raise UsageError(f"e0, et and prompts must have equal length, got {len(e0)}, {len(et)}, {len(prompts)}")
        lang = self._prompt_embedding(prompts).to(self.device)
        # The reward head always runs in fp32: it costs ~0.2% of the image encoder, and a bf16 output (3 significant
        # digits) would erase the small frame-to-frame reward changes the agent learns from.
        with torch.inference_mode():
            return self._reward(e0.to(self.device).float(), et.to(self.device).float(), lang.float()).float()

    def score_episodes(self, episodes: Sequence[np.ndarray], prompts: Sequence[str]) -> list[np.ndarray]:
        """Rewards for several episodes at once: episode i (uint8 [T_i+1,H,W,3], frame 0 = initial) vs prompts[i].

        All frames of all episodes go through the image encoder in shared batches, each exactly once.
        """
        prompts = check_prompts(prompts)
        if len(episodes) != len(prompts):
            raise UsageError(f"need one prompt per episode, got {len(episodes)} episodes and {len(prompts)} prompts")
        for i, ep in enumerate(episodes):
            check_frames(ep, f"episode {i} frames")
        shapes = {ep.shape[1:] for ep in episodes}
        if len(shapes) > 1:  # one concatenated batch needs one frame size; score such episodes separately
            return [out for ep, p in zip(episodes, prompts, strict=True) for out in self.score_episodes([ep], [p])]
        lengths = [len(ep) for ep in episodes]
        frames = episodes[0] if len(episodes) == 1 else np.concatenate(episodes)
        emb = self.embed_frames(frames)
        starts = np.cumsum([0, *lengths[:-1]])
        e0 = torch.cat([emb[s : s + 1].expand(n, -1) for s, n in zip(starts, lengths, strict=True)])
        row_prompts = [p for p, n in zip(prompts, lengths, strict=True) for _ in range(n)]
        rewards = self.score_embeddings(e0, emb, row_prompts).cpu().numpy().astype(np.float32)
        out = np.split(rewards, np.cumsum(lengths)[:-1])
        if self.standardizer is not None:
            out = [self.standardizer(p, r) for p, r in zip(prompts, out, strict=True)]
        return out

    def score_episode(self, frames: np.ndarray, prompt: str) -> np.ndarray:
        """Rewards [T+1] for one episode (frame 0 is the initial frame) and one prompt."""
        return self.score_episodes([frames], [prompt])[0]


def resolve_device(device: str | torch.device) -> str:
    """`auto` -> cuda when available else cpu; anything else is passed to torch (errors become one line)."""
    name = str(device)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"scorer.device {name!r} is not a torch device (use cpu, cuda, cuda:1 or auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"scorer.device is {name!r} but CUDA is not available; set scorer.device: cpu")
    return name


class StepScorer:
    """Per-step rewards for N vector envs: each env's initial frame is embedded once, at its reset.

    For drivers that want rewards as steps happen (the original relabelled whole episodes; `score_episodes` does that).
    Standardisation, if enabled on the scorer, is left to episode-level relabelling so both paths agree.
    """

    def __init__(self, scorer: FrameScorer, num_envs: int) -> None:
        self.scorer = scorer
        self.num_envs = int(num_envs)
        self.e0: torch.Tensor | None = None
        self.prompts: list[str | None] = [None] * self.num_envs

    def reset(self, env_ids: Sequence[int], frames: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        """Start episodes in `env_ids` with initial `frames` [k,H,W,3]; returns their t=0 rewards G(e0, e0, l)."""
        prompts = check_prompts(prompts)
        ids = list(env_ids)
        if not (len(ids) == len(frames) == len(prompts)) or any(not 0 <= i < self.num_envs for i in ids):
            raise UsageError(f"reset needs one frame and prompt per env id in 0..{self.num_envs - 1}, got ids {ids}")
        emb = self.scorer.embed_frames(frames)
        if self.e0 is None:
            self.e0 = torch.zeros(self.num_envs, emb.shape[1], device=emb.device)
        self.e0[ids] = emb
        for i, p in zip(ids, prompts, strict=True):
            self.prompts[i] = p
        return self.scorer.score_embeddings(emb, emb, prompts).cpu().numpy().astype(np.float32)

    def step(self, frames: np.ndarray) -> np.ndarray:
        """Rewards [N] for the current frames of all N envs (one batched encoder pass)."""
        if self.e0 is None or any(p is None for p in self.prompts):
            raise UsageError("StepScorer.step called before every env was reset with its initial frame and prompt")
        if len(frames) != self.num_envs:
            raise UsageError(f"step needs one frame per env ({self.num_envs}), got {len(frames)}")
        et = self.scorer.embed_frames(frames)
        prompts = [p for p in self.prompts if p is not None]
        return self.scorer.score_embeddings(self.e0, et, prompts).cpu().numpy().astype(np.float32)
