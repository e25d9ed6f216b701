"""Frozen vision-language reward scorers (R3M for LAMP, CLIP as an alternative), built from the `scorer:` config.

Every scorer has the same interface:
  embed_prompts(list[str]) -> Tensor[N, L]                      prompt embeddings (cached)
  embed_frames(uint8 [N,H,W,3]) -> Tensor[N, D]                 frame embeddings
  score_embeddings(e0, et, prompts) -> Tensor[N]                step-wise scoring with cached initial frames
  score_episode(uint8 [T+1,H,W,3], prompt) -> float32 [T+1]      frame 0 is the episode's initial frame
  score_episodes(list of episodes, prompts) -> list of arrays    all frames batched together
StepScorer(scorer, num_envs).reset(ids, frames0, prompts) / .step(frames) gives per-step rewards for vector envs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lamp.errors import UsageError
from lamp.scorers.base import FrameScorer, RunningStandardizer, StepScorer, check_frames, check_prompts
from lamp.weights import available_weights, cache_dir

__all__ = [
    "DEFAULTS",
    "FrameScorer",
    "RunningStandardizer",
    "StepScorer",
    "available_weights",
    "cache_dir",
    "check_frames",
    "check_prompts",
    "make_scorer",
]

# The `scorer:` config section (mirrors lamp/configs.yaml).
DEFAULTS: dict[str, Any] = {
    "kind": "r3m",  # r3m | clip | tiny (random weights: a plumbing check, rewards are meaningless) | none
    "model": "resnet50",  # resnet50 | resnet34 | resnet18 (official R3M weights, downloaded once)
    "checkpoint": "",  # local official-format model.pt instead of the download ("" = download `model`)
    "tokenizer": "distilbert-base-uncased",  # HF id or a folder with vocab.txt
    "device": "cpu",  # cpu | cuda | cuda:1 | auto
    "image_size": 128,  # frame size the env renders for the scorer (used by the env, not by the scorer itself)
    "resize": 0,  # 0 = feed frames as they are (faithful); 224 = resize first
    "pooling": "masked_mean",  # masked_mean (batch-independent) | r3m (original unmasked mean incl. [PAD])
    "standardize": False,  # per-prompt running standardisation of rewards
    "batch_size": 64,
    "precision": "fp32",  # fp32 | bf16 (autocast)
    "channels_last": True,
    "clip_model": "openai/clip-vit-base-patch32",
    "clip_scale": 1.0,
}


def make_scorer(config: Mapping[str, Any] | None = None, **overrides: Any) -> FrameScorer | None:
    """Build the scorer named by `config["kind"]` (unknown keys are an error, so typos do not pass silently).

    `none` builds nothing (Plan2Explore-only pretraining and from-scratch fine-tuning: no language at all).
    """
    cfg = {**DEFAULTS, **{str(k): v for k, v in dict(config or {}).items()}, **overrides}
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"unknown scorer config key(s) {', '.join(unknown)}; valid keys: {', '.join(DEFAULTS)}")
    common = {
        "device": cfg["device"],
        "batch_size": cfg["batch_size"],
        "precision": cfg["precision"],
        "channels_last": cfg["channels_last"],
        "standardize": cfg["standardize"],
    }
    if cfg["kind"] == "none":
        return None
    if cfg["kind"] == "r3m":
        from lamp.scorers.r3m import R3MScorer

        return R3MScorer.from_checkpoint(
            cfg["checkpoint"] or None,
            model=cfg["model"],
            tokenizer=cfg["tokenizer"],
            pooling=cfg["pooling"],
            resize=cfg["resize"] or None,
            **common,
        )
    if cfg["kind"] == "clip":
        from lamp.scorers.clip import ClipScorer

        return ClipScorer.from_pretrained(cfg["clip_model"], scale=cfg["clip_scale"], **common)
    if cfg["kind"] == "tiny":
        return tiny_random_scorer(pooling=cfg["pooling"], **common)
    raise UsageError(f"unknown scorer.kind {cfg['kind']!r}; valid: r3m, clip, tiny, none")


def tiny_random_scorer(**kwargs: Any) -> FrameScorer:
    """A randomly initialised tiny R3M (ResNet-18, 1-layer DistilBERT): a plumbing check, its rewards mean nothing.

    It goes through the same official-format loading path as the real weights (written once to the cache).
    """
    from lamp.scorers.r3m import R3MScorer
    from lamp.scorers.tiny import random_r3m, save_official, write_vocab

    folder = cache_dir() / "tiny_random_r3m"
    checkpoint = folder / "model.pt"
    if not checkpoint.is_file():
        from lamp.atomic import atomic_path

        write_vocab(folder)
        with atomic_path(checkpoint) as tmp:
            save_official(random_r3m("resnet18", seed=0), tmp)
    scorer = R3MScorer.from_checkpoint(checkpoint, model="resnet18", tokenizer=str(folder), **kwargs)
    scorer.kind = "tiny"
    return scorer
