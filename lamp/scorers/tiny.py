"""Random-weight R3M checkpoints in the official format, for tests, benchmarks and `lamp doctor` smoke checks.

The real weights cannot be fetched in CI, so we exercise the exact same loading path on files we write ourselves:
`{"r3m": {"module.<key>": tensor}}`, with a tiny DistilBERT and a tiny WordPiece vocab unless asked otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lamp.scorers.r3m import R3M

TINY_WORDS: tuple[str, ...] = (
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "a",
    "the",
    "an",
    "of",
    "to",
    "up",
    "on",
    "in",
    "off",
    "pick",
    "place",
    "push",
    "pull",
    "open",
    "close",
    "lift",
    "move",
    "put",
    "take",
    "red",
    "green",
    "blue",
    "yellow",
    "block",
    "cube",
    "cup",
    "drawer",
    "door",
    "lid",
    "button",
    "handle",
    "object",
    "bowl",
    "mug",
    "ball",
    "robot",
    "arm",
    "gripper",
    "table",
    "left",
    "right",
    "top",
    "into",
    "from",
    "it",
    "##s",
    "##ing",
)


def write_vocab(folder: str | Path, words: tuple[str, ...] = TINY_WORDS) -> Path:
    """Write a WordPiece `vocab.txt` (one token per line) into `folder` and return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    return folder


def tiny_distilbert_config(vocab_size: int = len(TINY_WORDS), dim: int = 64, n_layers: int = 1) -> Any:
    """A DistilBERT small enough for unit tests; heads = dim // 64 so the loader's shape inference reproduces it."""
    from transformers import DistilBertConfig

    return DistilBertConfig(
        vocab_size=vocab_size, dim=dim, n_layers=n_layers, n_heads=max(1, dim // 64), hidden_dim=2 * dim,
        max_position_embeddings=64,
    )  # fmt: skip


def random_r3m(arch: str = "resnet18", distilbert_config: Any = None, hidden_dim: int = 64, seed: int = 0) -> R3M:
    """An R3M with random weights and non-trivial BatchNorm statistics (so eval-mode BN is actually exercised)."""
    torch.manual_seed(seed)
    model = R3M(arch, distilbert_config or tiny_distilbert_config(), hidden_dim=hidden_dim)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def save_official(model: R3M, path: str | Path, extra: dict[str, torch.Tensor] | None = None) -> Path:
    """Save like the original trainer: `{"r3m": DataParallel state dict}` (every key prefixed `module.`)."""
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    state.update(extra or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"r3m": state}, path)
    return path
