"""Simulator back-ends behind one gymnasium interface, built by name with `make_env`.

Entry points are registered as "module:function" strings and imported lazily, so that importing
`envs` never pulls in MuJoCo or CoppeliaSim until an env of that back-end is actually built.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from lamp.errors import UsageError

DEFAULT_BACKEND = "metaworld"
# The paper's five fine-tuning tasks; every back-end provides them under these names.
DOWNSTREAM_TASKS = ("push_button", "turn_tap", "close_microwave", "pick_up_cup", "take_lid_off_saucepan")
_REGISTRY: dict[str, str] = {}


def register(name: str, entry_point: str) -> None:
    """Register `name` ("backend/task") to be built by the callable at "module:function"."""
    _REGISTRY[name] = entry_point


# RLBench back-end (CoppeliaSim; envs.rlbench is imported only when one of these is built).
register("rlbench/pretrain", "envs.rlbench:make")
for _task in DOWNSTREAM_TASKS:
    register(f"rlbench/{_task}", "envs.rlbench:make")


def registered() -> list[str]:
    """All registered env names, sorted."""
    return sorted(_REGISTRY)


def pretrain_noun_classes(backend: str, pool: str = "disjoint", objects: list[str] | None = None) -> list[str]:
    """The object classes a pretraining prompt may name: the Meta-World pool's scene objects, or RLBench's."""
    if backend == "metaworld":
        from envs.metaworld import PRETRAIN_NOUNS, pretrain_pool

        return sorted({PRETRAIN_NOUNS[name] for name in pretrain_pool(pool)})
    return sorted(set(objects or []))


def make_env(name: str, **options: Any) -> Any:
    """Build a registered env; a bare task name uses the default back-end ("push_button" is "metaworld/push_button")."""
    full = name if "/" in name else f"{DEFAULT_BACKEND}/{name}"
    if full not in _REGISTRY:
        close = difflib.get_close_matches(full, _REGISTRY, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"unknown env '{name}'.{hint} Valid names: {', '.join(registered()) or '(none registered)'}")
    module, func = _REGISTRY[full].split(":")
    return getattr(importlib.import_module(module), func)(full.split("/", 1)[1], **options)


# Meta-World back-end (embedded MuJoCo; envs.metaworld is imported only when one of these is built).
register("metaworld/pretrain", "envs.metaworld:make")
for _task in DOWNSTREAM_TASKS:
    register(f"metaworld/{_task}", "envs.metaworld:make")
