"""LAMP's reward model: frozen R3M (ResNet trunk + DistilBERT + language-reward MLP), loaded from official weights.

Module names mirror the original `R3M` module (`convnet`, `lang_enc.model`, `lang_rew.pred`) so the official
checkpoint (`torch.load(model.pt)["r3m"]`, keys prefixed `module.` by DataParallel) loads strictly with no renaming.
DistilBERT's architecture is built from a config inferred from the checkpoint's tensor shapes (its weights are in the
checkpoint), so only the tokenizer's `vocab.txt` ever comes from the Hugging Face hub.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lamp import weights
from lamp.errors import UsageError
from lamp.scorers.base import FrameScorer
from lamp.scorers.resnet import ARCHS, ResNet, infer_arch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Only this buffer may be absent/extra: older transformers saved it in the state dict, newer ones do not.
TOLERATED_KEYS = ("lang_enc.model.embeddings.position_ids",)
POOLINGS = ("masked_mean", "r3m")


class LangEncoder(nn.Module):
    """DistilBERT wrapper; `model` holds the HF module so keys read `lang_enc.model.*` like the original."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        from transformers import DistilBertModel

        self.model = DistilBertModel(config)


class LanguageReward(nn.Module):
    """G(e0, et, l): 5 linear layers, ReLU between, raw logit out (the original's Sigmoid is never applied)."""

    def __init__(self, im_dim: int, lang_dim: int = 768, hidden_dim: int = 1024) -> None:
        super().__init__()
        h = hidden_dim
        self.pred = nn.Sequential(
            nn.Linear(2 * im_dim + lang_dim, h),
            nn.ReLU(),
            nn.Linear(h, h),
            nn.ReLU(),
            nn.Linear(h, h),
            nn.ReLU(),
            nn.Linear(h, h),
            nn.ReLU(),
            nn.Linear(h, 1),
        )

    def forward(self, e0: torch.Tensor, et: torch.Tensor, lang: torch.Tensor) -> torch.Tensor:
        return self.pred(torch.cat([e0, et, lang], dim=-1)).squeeze(-1)


class R3M(nn.Module):
    """Parameter container matching the official checkpoint layout (after stripping `module.`)."""

    def __init__(self, arch: str, distilbert_config: Any, hidden_dim: int = 1024) -> None:
        super().__init__()
        self.convnet = ResNet(arch)
        self.lang_enc = LangEncoder(distilbert_config)
        self.lang_rew = LanguageReward(self.convnet.outdim, distilbert_config.dim, hidden_dim)


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Official-format state dict from `path` with the `module.` prefix removed. Never unpickles objects."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"scorer checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(
            f"scorer checkpoint {path} is truncated or corrupt ({msg[:160]}); delete it and re-download"
        ) from None
    except Exception as err:  # weights_only refusals (pickled objects) raise UnpicklingError
        raise UsageError(
            f"scorer checkpoint {path} cannot be loaded safely ({type(err).__name__}); expected a state dict"
        ) from None
    if not isinstance(blob, dict) or not isinstance(blob.get("r3m"), dict):
        keys = list(blob)[:5] if isinstance(blob, dict) else type(blob).__name__
        raise UsageError(f"scorer checkpoint {path} has no 'r3m' state dict (found {keys}); is it an R3M model.pt?")
    state = blob["r3m"]
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def distilbert_config_from_state(state: dict[str, torch.Tensor]) -> Any:
    """DistilBERT config from tensor shapes; defaults equal distilbert-base-uncased, heads = dim // 64 as there."""
    from transformers import DistilBertConfig

    p = "lang_enc.model."
    try:
        vocab_size, dim = state[p + "embeddings.word_embeddings.weight"].shape
        max_pos = state[p + "embeddings.position_embeddings.weight"].shape[0]
        hidden = state[p + "transformer.layer.0.ffn.lin1.weight"].shape[0]
    except KeyError as err:
        raise UsageError(
            f"scorer checkpoint has no DistilBERT weights (missing {err.args[0]}); not a LAMP/R3M file"
        ) from None
    n_layers = len({k.split(".")[4] for k in state if k.startswith(p + "transformer.layer.")})
    return DistilBertConfig(
        vocab_size=vocab_size,
        dim=dim,
        max_position_embeddings=max_pos,
        hidden_dim=hidden,
        n_layers=n_layers,
        n_heads=max(1, dim // 64),
    )


def load_strict(model: R3M, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy `state` into `model`; any missing, unexpected or mis-shaped key fails with one line listing them."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and k not in TOLERATED_KEYS]
    unexpected = [k for k in state if k not in expected and k not in TOLERATED_KEYS]
    misshaped = [
        f"{k} {list(state[k].shape)}!={list(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if items:
            shown = ", ".join(items[:4]) + (f" (+{len(items) - 4} more)" if len(items) > 4 else "")
            problems.append(f"{len(items)} {label}: {shown}")
    if problems:
        raise UsageError(f"scorer checkpoint {source} does not match the model: " + "; ".join(problems))
    model.load_state_dict({k: state[k] for k in expected if k in state}, strict=False)


def load_tokenizer(name_or_path: str) -> Any:
    """DistilBERT WordPiece tokenizer from a local vocab.txt / folder, or the HF hub cache (offline-aware)."""
    from transformers import DistilBertTokenizer

    path = Path(name_or_path).expanduser()
    if path.is_dir():
        path = path / "vocab.txt"
        if not path.is_file():
            raise UsageError(f"scorer.tokenizer folder {path.parent} has no vocab.txt")
    elif not path.is_file():
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(name_or_path, "vocab.txt", local_files_only=weights.offline()))
        except Exception as err:
            why = "offline mode is on and it is not in the HF cache" if weights.offline() else type(err).__name__
            raise UsageError(
                f"cannot get the DistilBERT tokenizer vocab for '{name_or_path}' ({why}); run once online or set "
                f"scorer.tokenizer to a folder containing vocab.txt"
            ) from None
    # from_pretrained(folder) reads vocab.txt in transformers 4.x and 5.x alike (the constructor's argument name
    # changed between them, and 5.x silently builds an empty vocabulary from an unknown keyword).
    return DistilBertTokenizer.from_pretrained(str(path.parent), do_lower_case=True, local_files_only=True)


class R3MScorer(FrameScorer):
    """LAMP's reward r_t = G(φ(o_0), φ(o_t), ψ(l)) with a frozen R3M (see lamp_original.md §1-2).

    pooling: `masked_mean` (default) averages DistilBERT states over real tokens only, so a prompt's embedding is
    the same in any batch; `r3m` is the original unmasked mean over all positions including [PAD].
    resize: None feeds frames at their own size (the original fed 128x128); 224 resizes bilinearly first.
    """

    kind = "r3m"

    def __init__(
        self,
        model: R3M,
        tokenizer: Any,
        *,
        pooling: str = "masked_mean",
        resize: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise UsageError(f"scorer.pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if resize is not None and int(resize) < 32:
            raise UsageError(f"scorer.resize must be null or a size >= 32 (e.g. 224), got {resize}")
        vocab = model.lang_enc.model.config.vocab_size
        if len(tokenizer) != vocab:  # e.g. a cased vocab (28996) with the uncased checkpoint (30522)
            raise UsageError(
                f"scorer.tokenizer has {len(tokenizer)} tokens but the checkpoint's DistilBERT embeds {vocab}; "
                "use the distilbert-base-uncased vocab.txt"
            )
        self.model = model.eval().requires_grad_(False).to(self.device)
        if self.channels_last:
            self.model.convnet.to(memory_format=torch.channels_last)
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.resize = int(resize) if resize is not None else None
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path | None = None,
        *,
        model: str = "resnet50",
        tokenizer: str = "distilbert-base-uncased",
        progress: bool = True,
        **kwargs: Any,
    ) -> R3MScorer:
        """Build from an official-format checkpoint: a local path, or the cached/downloaded `model` weights."""
        if model not in ARCHS:
            raise UsageError(f"unknown scorer.model '{model}'; valid ids: {', '.join(ARCHS)}")
        if checkpoint is None:
            path = weights.ensure_r3m_checkpoint(model, progress=progress)
        else:  # a user's own file: verified only if a `model.pt.sha256` sits next to it (we never write there)
            path = Path(checkpoint).expanduser()
            if path.is_dir():  # a folder like ~/.r3m/r3m_50: the official file inside it
                if not (path / "model.pt").is_file():
                    raise UsageError(
                        f"scorer.checkpoint {path} is a folder without model.pt; pass the official R3M model.pt "
                        "or the folder that holds it (e.g. ~/.r3m/r3m_50)"
                    )
                path = path / "model.pt"
            if path.is_file():
                weights.verify_sha256(path, record_if_missing=False)
        state = read_checkpoint(path)
        found = infer_arch(state)
        if found is not None and found != model:
            raise UsageError(
                f"scorer checkpoint {path} holds an R3M {found} but scorer.model is {model}; set scorer.model: {found}"
            )
        if "lang_rew.pred.0.weight" not in state:
            raise UsageError(
                f"scorer checkpoint {path} has no language-reward head (lang_rew.*): upstream R3M strips it"
            )
        hidden = state["lang_rew.pred.0.weight"].shape[0]
        r3m = R3M(model, distilbert_config_from_state(state), hidden_dim=hidden)
        load_strict(r3m, state, str(path))
        return cls(r3m, load_tokenizer(tokenizer), **kwargs)

    def text_batch_dependent(self) -> bool:
        return self.pooling == "r3m"

    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        if self.resize is not None and images.shape[-2:] != (self.resize, self.resize):
            images = nn.functional.interpolate(images, size=(self.resize, self.resize), mode="bilinear", antialias=True)
        return self.model.convnet((images - self.mean) / self.std)

    def _encode_texts(self, prompts: list[str]) -> torch.Tensor:
        texts = [p.replace("_", " ") for p in prompts]  # the original replaced underscores before encoding
        max_len = self.model.lang_enc.model.config.max_position_embeddings
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        hidden = self.model.lang_enc.model(**tokens).last_hidden_state.float()
        if self.pooling == "r3m":
            return hidden.mean(1)
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def _reward(self, e0: torch.Tensor, et: torch.Tensor, lang: torch.Tensor) -> torch.Tensor:
        return self.model.lang_rew(e0, et, lang.to(e0.dtype))
