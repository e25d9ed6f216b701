"""A zero-shot CLIP scorer behind the same interface: reward = how much closer frame t is to the prompt than frame 0.

r_t = cos(v(o_t), u(l)) - cos(v(o_0), u(l)), with v/u the CLIP image/text embeddings (ZeST-like progress signal).
The original's ZeST path subtracted two encodings of the *same* text and so always returned 0; this one compares the
current frame against the initial frame for one prompt, so it is zero at t=0 and moves as the scene changes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lamp import weights
from lamp.errors import UsageError
from lamp.scorers.base import FrameScorer

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _features(out: Any) -> torch.Tensor:
    """transformers 4.x returns a tensor from get_*_features; 5.x returns an output whose pooler_output is it."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class ClipScorer(FrameScorer):
    """Frozen `transformers.CLIPModel`; frames are center-cropped to square and resized to the model's input size."""

    kind = "clip"

    def __init__(self, model: Any, tokenizer: Any, *, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model.eval().requires_grad_(False).to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.tokenizer = tokenizer
        self.scale = float(scale)
        self.image_size = int(model.config.vision_config.image_size)
        self.max_len = int(model.config.text_config.max_position_embeddings)
        self.mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_pretrained(cls, name: str = "openai/clip-vit-base-patch32", **kwargs: Any) -> ClipScorer:
        """Load CLIP weights + tokenizer through transformers' cache; offline flags mean local files only."""
        from transformers import CLIPModel, CLIPTokenizer

        try:
            model = CLIPModel.from_pretrained(name, local_files_only=weights.offline())
            tokenizer = CLIPTokenizer.from_pretrained(name, local_files_only=weights.offline())
        except Exception as err:  # hub/cache/format errors differ across transformers versions
            why = (
                "offline mode is on and it is not in the HF cache"
                if weights.offline()
                else str(err).splitlines()[0][:120]
            )
            raise UsageError(
                f"cannot load CLIP model '{name}' ({why}); run once online or set scorer.clip_model to a local folder"
            ) from None
        if len(tokenizer) != model.config.text_config.vocab_size:  # transformers may build an empty one silently
            raise UsageError(
                f"the tokenizer found for CLIP model '{name}' has {len(tokenizer)} tokens but the model embeds "
                f"{model.config.text_config.vocab_size}; its tokenizer files are missing or incomplete"
            )
        return cls(model, tokenizer, **kwargs)

    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        images = images[..., top : top + side, left : left + side]
        if side != self.image_size:
            size = (self.image_size, self.image_size)
            images = nn.functional.interpolate(images, size=size, mode="bicubic", antialias=True).clamp_(0, 1)
        feats = _features(self.model.get_image_features(pixel_values=(images - self.mean) / self.std))
        return nn.functional.normalize(feats.float(), dim=-1)

    def _encode_texts(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_len, return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return nn.functional.normalize(_features(self.model.get_text_features(**tokens)).float(), dim=-1)

    def _reward(self, e0: torch.Tensor, et: torch.Tensor, lang: torch.Tensor) -> torch.Tensor:
        return self.scale * ((et.float() - e0.float()) * lang.float()).sum(-1)
