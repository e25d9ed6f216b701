"""The fine-tuning source: a pretraining run's checkpoint, checked, loaded, and partly frozen or reset.

Everything here is checked before the fine-tuning run writes anything (`check_*`), then applied to a fresh agent
(`load_source`): weights only (the optimisers start fresh), then `--reset` and `--freeze`. Without a source
(`--scratch`) the agent keeps its fresh initialisation, the no-pretraining baseline.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from lamp.atomic import atomic_write_bytes
from lamp.config import to_yaml
from lamp.errors import UsageError
from lamp.rundir import LATEST, PREVIOUS, find_checkpoint, read_checkpoint, read_done

SOURCE_FILE = "source.json"  # what a fine-tuning run started from: the source folder, its config hash, freeze/reset


def config_hash(cfg: DictConfig) -> str:
    """A short fingerprint of a resolved config (recorded by fine-tuning runs for their source)."""
    return hashlib.sha256(to_yaml(cfg).encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------- checks
def check_source(source: str | Path) -> Path:
    """A fine-tuning source must be a lamp pretraining run with a config and a checkpoint."""
    path = Path(source).expanduser()
    if not path.is_dir():
        raise UsageError(f"--from '{path}' is not a folder; pass the --logdir of a lamp pretrain run")
    has_ckpt = (path / LATEST).is_file() or (path / PREVIOUS).is_file()
    if not (path / "config.yaml").is_file() or not has_ckpt:
        raise UsageError(
            f"--from '{path}' is not a lamp run (needs config.yaml and {LATEST}); "
            "pass the --logdir of a lamp pretrain run"
        )
    return path


def source_checkpoint(source: str | Path, log: Any = print) -> tuple[Path, dict[str, Any]]:
    """The fine-tuning source's newest readable checkpoint (previous.pt, with a warning, if latest.pt is broken)."""
    found = find_checkpoint(check_source(source), log)
    assert found is not None  # check_source saw one of the two files
    return found


def check_architecture(path: Path, cfg: DictConfig, fix: str, ckpt: dict[str, Any] | None = None) -> None:
    """Refuse (one line, before anything is written) a checkpoint whose agent architecture differs from cfg.agent."""
    from lamp.agent.agent import ARCH_KEYS, saved_arch

    saved = (ckpt if ckpt is not None else read_checkpoint(path))["agent"].get("config", {})
    diff = [
        f"agent.{k}: checkpoint {saved_arch(saved, k)!r} vs config {cfg.agent[k]!r}"
        for k in ARCH_KEYS
        if k in cfg.agent and _plain(saved_arch(saved, k)) != _plain(cfg.agent[k])
    ]
    if diff:
        raise UsageError(f"checkpoint {path} was trained with another architecture ({'; '.join(diff[:3])}); {fix}")


def check_language(path: Path, has_scorer: bool, ckpt: dict[str, Any] | None = None) -> None:
    """A pretrained agent without a `lang` input (scorer.kind none) must be fine-tuned without a scorer, and back."""
    had_lang = "lang" in (ckpt if ckpt is not None else read_checkpoint(path))["agent"]["obs_space"]
    if had_lang and not has_scorer:
        raise UsageError(f"{path} was pretrained with language (a scorer); fine-tune it with its scorer, not none")
    if not had_lang and has_scorer:
        raise UsageError(
            f"{path} was pretrained without language (scorer.kind none, e.g. Plan2Explore only); "
            "fine-tune it with --scorer.kind none"
        )


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, DictConfig | ListConfig) else value


# ------------------------------------------------------------------------------------------------- loading
def load_source(cfg: DictConfig, agent: Any, checkpoint: Path | None, run_dir: Path, log: Any = print) -> None:
    """Start fine-tuning: the source's weights into `agent`, then --reset / --freeze; LOGDIR/source.json says what
    the run started from. `checkpoint` is the source's checked checkpoint (None: from scratch)."""
    if not cfg.finetune.source:
        record = {"source": None, "scratch": True, "freeze": [], "reset": []}
        atomic_write_bytes(run_dir / SOURCE_FILE, json.dumps(record, indent=2).encode())
        log("fine-tuning from scratch: a freshly initialised agent, no pretraining")
        return
    assert checkpoint is not None  # checked before anything was written
    source = Path(cfg.finetune.source)
    load_pretrained(agent, checkpoint)
    for part in cfg.finetune.reset:
        reset_part(agent, part)
    for part in cfg.finetune.freeze:
        freeze_part(agent, part)
    from lamp.config import load_saved_config

    record = {
        "source": str(source.resolve()),
        "config_hash": config_hash(load_saved_config(source)),
        "source_env_steps": read_done(source).get("env_steps"),
        "freeze": list(cfg.finetune.freeze),
        "reset": list(cfg.finetune.reset),
    }
    atomic_write_bytes(run_dir / SOURCE_FILE, json.dumps(record, indent=2).encode())
    log(f"loaded pretrained agent from {source} (config {record['config_hash']})")


def load_pretrained(agent: Any, path: Path) -> None:
    """Copy a pretrained agent's weights; the ensemble (and its normalisers) may be absent on either side."""
    ckpt = read_checkpoint(path, map_location=agent.device)
    theirs = ckpt["agent"]["model"]
    ours = agent.state_dict()
    optional = ("explorer.", "intr_norm.", "extr_norm.")
    problems = [
        f"{k}: {tuple(theirs[k].shape)} != {tuple(ours[k].shape)}"
        for k in ours
        if k in theirs and theirs[k].shape != ours[k].shape
    ]
    missing = [k for k in ours if k not in theirs and not k.startswith(optional)]
    if problems or missing:
        detail = "; ".join(problems[:3] + [f"missing {k}" for k in missing[:3]])
        raise UsageError(
            f"checkpoint {path} was trained with another architecture ({detail}); "
            "fine-tune with the same size block as the pretraining run"
        )
    agent.load_state_dict({k: v for k, v in theirs.items() if k in ours}, strict=False)


RESETTABLE = ("reward_head", "critic_out")  # `--reset` parts


def reset_part(agent: Any, part: str, check_only: bool = False) -> None:
    """Re-initialise a named part before fine-tuning: `reward_head` (learnt again from the task's reward alone) or
    `critic_out` (the critic's output layer, zero as DreamerV3 initialises it; with `--freeze critic_hidden` a
    probe trained from a fresh output layer instead of the pretrained one the original kept)."""
    if part not in RESETTABLE:
        raise UsageError(f"--reset '{part}' is unknown; valid: {', '.join(RESETTABLE)}")
    if check_only:
        return
    if part == "critic_out":
        critic = agent.behavior.critic
        torch.nn.init.zeros_(critic.out.weight)
        if critic.out.bias is not None:
            torch.nn.init.zeros_(critic.out.bias)
        agent.behavior.slow_critic.load_state_dict(critic.state_dict())
        return
    head = agent.world_model.reward_head
    for module in head.modules():
        if hasattr(module, "reset_parameters") and module is not head:
            module.reset_parameters()
    torch.nn.init.zeros_(head.out.weight)
    if head.out.bias is not None:
        torch.nn.init.zeros_(head.out.bias)


def freeze_part(agent: Any, part: str, check_only: bool = False) -> None:
    """`critic_hidden`: LAMP's linear probe. The hidden critic layers keep their pretrained values and stop training;
    the output layer keeps its pretrained values too and trains, as the original ran it (its positional loader kept
    the pretrained output layer; `--reset critic_out` starts it from zero instead).

    A resumed run freezes again: which parameters train is not part of a checkpoint."""
    if part != "critic_hidden":
        raise UsageError(f"--freeze '{part}' is unknown; valid: critic_hidden")
    if check_only:
        return
    for name, param in agent.behavior.critic.named_parameters():
        if not name.startswith("out."):
            param.requires_grad_(False)
