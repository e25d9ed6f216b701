"""Agent and replay defaults plus the named size blocks, mirrored in lamp/configs.yaml.

Modules take any mapping-like config (dict, OmegaConf DictConfig, dataclass); `to_cfg` turns it into an
attribute-access dict so each module can be built and tested alone with `make_config("tiny")`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

AGENT_DEFAULTS: dict[str, Any] = {
    # observation keys: images are uint8 HxWxC, vectors are float32; missing keys are simply not used
    "image_keys": ["image", "wrist"],
    "vector_keys": ["state", "lang"],
    "action_dim": 4,
    # world model (DreamerV3)
    "deter": 512,
    "hidden": 256,
    "stoch": 32,
    "classes": 16,
    "unimix": 0.01,
    "depth": 16,
    "units": 256,
    "layers": 2,
    "norm": "rms",
    "bins": 255,
    "free_nats": 1.0,
    "dyn_scale": 0.5,
    "rep_scale": 0.1,
    "rec_scale": 1.0,
    "rew_scale": 1.0,
    "con_scale": 1.0,
    # actor-critic (DreamerV3)
    "horizon": 15,
    "discount": 0.997,
    "lam": 0.95,
    "actent": 3e-4,
    # dynamics: backprop the λ-return through the learned dynamics (DreamerV3 2023 and LAMP for continuous actions);
    # reinforce: score-function gradient with the normalised advantage (lower cost, much higher variance)
    "actor_grad": "dynamics",
    "slow_critic_fraction": 0.02,
    "slowreg": 1.0,
    "retnorm_decay": 0.99,
    "retnorm_lo": 0.05,
    "retnorm_hi": 0.95,
    "lang_to_actor": False,  # also feed `lang` to actor and critic (it always reaches them through the latent)
    "min_std": 0.1,
    "max_std": 1.0,
    # optimisation
    "model_lr": 1e-4,
    "actor_lr": 3e-5,
    "critic_lr": 3e-5,
    "eps": 1e-8,
    "model_clip": 1000.0,
    "ac_clip": 100.0,
    "batch_size": 16,
    "batch_length": 64,
    "train_ratio": 512,
    "precision": "float32",  # or bfloat16 (autocast)
    "channels_last": False,
    "compile": False,  # torch.compile the conv encoder/decoder (fuses norm + SiLU; costs compile time at start)
    "max_bad_steps": 3,
    # Plan2Explore and reward blending: r = intr_scale·norm(disag) + extr_scale·norm(reward)
    "expl": {
        "members": 8,
        "layers": 2,
        "units": 256,
        "target": "stoch",  # stoch | deter | embed
        "intr_scale": 0.0,
        "extr_scale": 1.0,
        "lr": 3e-4,
        "clip": 100.0,
        "norm_decay": 0.99,
    },
}

REPLAY_DEFAULTS: dict[str, Any] = {
    "capacity": 1_000_000,  # steps
    "chunk": 1024,  # steps per on-disk chunk
    "cache_chunks": 64,  # chunks kept in RAM (bounded cache)
    "directory": "",  # usually LOGDIR/replay; '' keeps everything in RAM only (tests)
}

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "deter": 32,
        "hidden": 16,
        "stoch": 4,
        "classes": 4,
        "depth": 4,
        "units": 16,
        "layers": 1,
        "bins": 31,
        "horizon": 4,
        "batch_size": 3,
        "batch_length": 8,
        "expl": {"members": 3, "layers": 1, "units": 16},
    },
    "small": {
        "deter": 512,
        "hidden": 256,
        "stoch": 32,
        "classes": 16,
        "depth": 16,
        "units": 256,
        "layers": 2,
    },
    "size12m": {"deter": 2048, "hidden": 256, "classes": 16, "depth": 16, "units": 256},
    "size25m": {"deter": 3072, "hidden": 384, "classes": 24, "depth": 24, "units": 384},
    "size50m": {"deter": 4096, "hidden": 512, "classes": 32, "depth": 32, "units": 512},
}


class Cfg(dict):
    """dict with attribute access (nested)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(key) from e


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if hasattr(obj, "_metadata") and hasattr(obj, "items"):  # OmegaConf DictConfig/ListConfig without importing it
        from omegaconf import OmegaConf

        obj = OmegaConf.to_container(obj, resolve=True)
    if isinstance(obj, Mapping):
        return Cfg({k: _plain(v) for k, v in obj.items()})
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def to_cfg(config: Any) -> Cfg:
    """Any mapping-like config -> nested Cfg; fills agent defaults for missing keys."""
    merged = _merge(copy.deepcopy(AGENT_DEFAULTS), _plain(config) or {})
    return _plain(merged)


def _merge(base: dict, over: Mapping) -> dict:
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), Mapping):
            base[k] = _merge(dict(base[k]), v)
        else:
            base[k] = v
    return base


def make_config(size: str = "tiny", **overrides: Any) -> Cfg:
    """Agent config for a named size block plus overrides (nested dicts merge)."""
    cfg = _merge(copy.deepcopy(AGENT_DEFAULTS), SIZES[size])
    return _plain(_merge(cfg, overrides))


def make_replay_config(**overrides: Any) -> Cfg:
    return _plain(_merge(copy.deepcopy(REPLAY_DEFAULTS), overrides))
