"""CLIP scorer on a tiny random CLIPConfig: same interface as R3M, zero at t=0, non-zero after, rises toward text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lamp.errors import UsageError
from lamp.scorers.clip import CLIP_MEAN, CLIP_STD, ClipScorer
from lamp.scorers.tiny import TINY_WORDS, write_vocab

PROMPT = "pick up the red block"


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    from transformers import CLIPConfig, CLIPModel, DistilBertTokenizer

    # A WordPiece tokenizer stands in for CLIP's BPE: the scorer only needs ids + mask ending in the EOS id.
    vocab = write_vocab(tmp_path_factory.mktemp("clip_tok"))
    tokenizer = DistilBertTokenizer.from_pretrained(str(vocab))
    assert tokenizer.unk_token_id not in tokenizer(PROMPT)["input_ids"]
    text = {"vocab_size": len(TINY_WORDS), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 32, "pad_token_id": 0, "bos_token_id": 2,
            "eos_token_id": tokenizer.sep_token_id}  # fmt: skip
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}  # fmt: skip
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    return model, tokenizer


def make(parts: tuple, **kwargs) -> ClipScorer:
    return ClipScorer(*parts, **kwargs)


def frames(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_zero_at_start_and_nonzero_after(parts: tuple) -> None:
    s = make(parts)
    r = s.score_episode(frames(5), PROMPT)
    assert r.shape == (5,) and r.dtype == np.float32
    assert r[0] == 0.0  # the initial frame has no gain over itself
    assert np.all(np.abs(r[1:]) > 1e-6)  # unlike the original ZeST path, which was identically zero
    assert s.embed_prompts([PROMPT, "open the drawer"]).shape == (2, 16)


def test_reward_rises_as_the_frame_moves_toward_the_text(parts: tuple) -> None:
    s = make(parts)
    model = parts[0]
    start = frames(1, size=32, seed=1)
    text = s.embed_prompts([PROMPT])[0]
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    # Find a target image that the model finds closer to the prompt, by gradient ascent on the pixels.
    x = (torch.from_numpy(start).permute(0, 3, 1, 2).float() / 255).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.02)
    for _ in range(60):
        feats = model.get_image_features(pixel_values=(x - mean) / std)
        feats = feats if isinstance(feats, torch.Tensor) else feats.pooler_output
        loss = -torch.nn.functional.cosine_similarity(feats, text[None]).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        x.data.clamp_(0, 1)
    target = (x.detach().permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    alphas = np.linspace(0, 1, 6).reshape(-1, 1, 1, 1)
    episode = np.round((1 - alphas) * start + alphas * target).astype(np.uint8)
    r = s.score_episode(episode, PROMPT)
    assert r[0] == 0.0
    assert r[-1] > r[3] > 0
    assert r[-1] > 0.01


def test_batched_equals_single_and_cached_initial_frame(parts: tuple) -> None:
    s = make(parts, batch_size=3)
    eps = [frames(4, seed=2), frames(6, seed=3)]
    prompts = [PROMPT, "open the drawer"]
    batched = s.score_episodes(eps, prompts)
    for ep, p, b in zip(eps, prompts, batched, strict=True):
        np.testing.assert_allclose(b, s.score_episode(ep, p), rtol=1e-4, atol=1e-6)
        e0 = s.embed_frames(ep[:1])
        step = [s.score_embeddings(e0, s.embed_frames(ep[t : t + 1]), [p]).item() for t in range(len(ep))]
        np.testing.assert_allclose(b, step, rtol=1e-4, atol=1e-6)


def test_non_square_frames_are_center_cropped(parts: tuple) -> None:
    s = make(parts)
    wide = frames(3, size=32, seed=4)
    padded = np.concatenate([np.zeros((3, 32, 8, 3), np.uint8), wide, np.zeros((3, 32, 8, 3), np.uint8)], axis=2)
    np.testing.assert_allclose(s.score_episode(padded, PROMPT), s.score_episode(wide, PROMPT), atol=1e-6)


def test_offline_clip_load_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LAMP_OFFLINE", "1")
    with pytest.raises(UsageError, match="offline mode is on") as info:
        ClipScorer.from_pretrained("lamp-tests/no-such-clip")
    assert "\n" not in str(info.value)
