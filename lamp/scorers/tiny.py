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
        vocab_size=vocab_size,
        dim=dim,
        n_layers=n_layers,
        n_heads=max(1, dim // 64),
        hidden_dim=2 * dim,
        max_position_embeddings=64,
    )


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


def save_tiny_clip(folder: str | Path, seed: int = 0) -> Path:
    """A randomly initialised tiny CLIP (model + byte-level BPE tokenizer without merges) saved in Hugging Face's
    format, so `scorer.clip_model: FOLDER` runs the real loading path offline (plumbing checks of the clip arm)."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # Byte-level BPE's alphabet: printable bytes stand for themselves, the others for code points from 256 on.
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    shifted = [b for b in range(256) if b not in printable]
    symbols = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(shifted))]
    vocab = {s: i for i, s in enumerate([*symbols, *(s + "</w>" for s in symbols)])}
    vocab |= {"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])  # no merges: one token per character
    text = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 128,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    torch.manual_seed(seed)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
