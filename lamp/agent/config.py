"""Agent and replay defaults plus the named size blocks, read from lamp/configs.yaml.

Modules take any mapping-like config (dict, OmegaConf DictConfig, dataclass); `to_cfg` turns it into an
attribute-access dict so each module can be built and tested alone with `make_config("tiny")`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

CONFIGS_FILE = Path(__file__).resolve().parent.parent / "configs.yaml"
SIZE_BLOCKS = ("tiny", "size2m", "small", "size12m", "size25m", "size50m")


def _read_blocks() -> dict[str, Any]:
    """lamp/configs.yaml, the one place where defaults live (no mirror here that could drift from it)."""
    with open(CONFIGS_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


_BLOCKS = _read_blocks()
AGENT_DEFAULTS: dict[str, Any] = _BLOCKS["defaults"]["agent"]
REPLAY_DEFAULTS: dict[str, Any] = {**_BLOCKS["defaults"]["replay"], "directory": ""}  # '' keeps replay in RAM
SIZES: dict[str, dict[str, Any]] = {name: _BLOCKS[name]["agent"] for name in SIZE_BLOCKS}


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
