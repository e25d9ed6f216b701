"""A run's checkpoint: everything a re-run of the same command needs to continue where this one stopped.

LOGDIR/checkpoints/latest.pt holds the agent (weights and optimisers) and, as extras, the loop's counters
(`Progress`), the replay's position, the prompt sampler's RNG and the scorer's reward standardiser. The replay's
steps themselves are on disk already (LOGDIR/replay); only its unwritten chunk is flushed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from time import monotonic  # the clock of time-based checkpoints
from typing import Any

import numpy as np
import torch

from lamp.atomic import atomic_copy
from lamp.rundir import LATEST, PREVIOUS


@dataclass
class Progress:
    """Counters saved in every checkpoint so a resumed run continues where it stopped."""

    env_steps: int = 0
    episodes: int = 0
    updates: int = 0
    train_credit: float = 0.0
    last_log: int = 0
    last_save: int = 0
    last_video: int = 0
    last_eval: int = -1
    eval_success: float = float("nan")
    seconds: float = 0.0  # wall-clock seconds in the loop (collection, training, evaluations), summed over resumes


class Checkpointer:
    """Saves and restores the agent, `progress`, the replay's state, the prompt RNG and the scorer's standardiser."""

    def __init__(
        self, run_dir: Path, agent: Any, replay: Any, progress: Progress, rng: np.random.Generator, scorer: Any = None
    ) -> None:
        self.path = run_dir / LATEST
        self.run_dir = run_dir
        self.agent, self.replay, self.progress, self.rng = agent, replay, progress, rng
        self.standardizer = getattr(scorer, "standardizer", None)
        self.saved_at = monotonic()

    def save(self) -> None:
        """The replay's partial chunk first, then latest.pt is kept as previous.pt (a hard link), then the new
        latest.pt is written atomically; at every moment both files are complete."""
        self.replay.flush()
        self.progress.last_save = self.progress.env_steps  # saved with the checkpoint: a resume does not save again
        extra = {
            "progress": dict(vars(self.progress)),
            "replay": self.replay.state_dict(),
            "prompt_rng": self.rng.bit_generator.state,
        }
        if self.standardizer is not None:
            extra["standardizer"] = self.standardizer.state_dict()
        if self.path.is_file():
            atomic_copy(self.path, self.run_dir / PREVIOUS)
        self.agent.save(self.path, extra=json_safe(extra))
        self.saved_at = monotonic()

    def load(self, path: Path, log: Any = print) -> None:
        """Restore everything `save` wrote from `path` (latest.pt, or previous.pt when latest.pt is unreadable)."""
        extra = self.agent.load(path)
        for key, value in extra["progress"].items():
            setattr(self.progress, key, value)
        self.replay.load_state_dict(extra["replay"])
        self.rng.bit_generator.state = extra["prompt_rng"]
        if "standardizer" in extra and self.standardizer is not None:
            self.standardizer.load_state_dict(extra["standardizer"])
        log(f"resumed from {path} at env step {self.progress.env_steps:,}")
        if getattr(self.replay, "dropped", 0):
            log(f"replay: dropped {self.replay.dropped:,} steps collected after that checkpoint (done again)")

    def seconds_since_save(self) -> float:
        return monotonic() - self.saved_at


def json_safe(value: Any) -> Any:
    """Checkpoint extras must load with weights_only=True: turn numpy scalars/arrays into Python/tensors."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    return value
