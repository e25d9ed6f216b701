"""R3M scorer: architecture names, strict official-format loading, preprocessing, pooling and the batched fast path.

All checkpoints are tiny random R3Ms written by the tests in the official format ({"r3m": {"module.*": tensor}}).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lamp.errors import UsageError
from lamp.scorers import make_scorer
from lamp.scorers.r3m import IMAGENET_MEAN, IMAGENET_STD, LanguageReward, R3MScorer, read_checkpoint
from lamp.scorers.resnet import ResNet, infer_arch
from lamp.scorers.tiny import random_r3m, save_official, tiny_distilbert_config, write_vocab

PROMPTS = ["pick up the red block", "open the drawer", "push_the button"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("tiny_r3m")
    model = random_r3m("resnet18", hidden_dim=64, seed=0)
    return {
        "model": model,
        "ckpt": save_official(model, root / "model.pt"),
        "vocab": write_vocab(root / "tok"),
        "root": root,
    }


def scorer(tiny: dict, **kwargs) -> R3MScorer:
    kwargs.setdefault("channels_last", False)
    return R3MScorer.from_checkpoint(tiny["ckpt"], model="resnet18", tokenizer=str(tiny["vocab"]), **kwargs)


def frames(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# --- architecture ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "n_params", "outdim"),
    [("resnet18", 11_176_512, 512), ("resnet34", 21_284_672, 512), ("resnet50", 23_508_032, 2048)],
)
def test_resnet_matches_torchvision_layout(arch: str, n_params: int, outdim: int) -> None:
    net = ResNet(arch).eval()
    keys = net.state_dict().keys()
    # torchvision's parameter count minus its fc layer, and its key names
    assert sum(p.numel() for p in net.parameters()) == n_params
    assert "layer1.0.conv1.weight" in keys and "layer4.0.downsample.1.running_var" in keys
    assert not any(k.startswith("fc.") for k in keys)
    assert infer_arch(dict(net.state_dict()), prefix="") == arch
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 64, 64)).shape == (2, outdim)


@pytest.mark.parametrize(("im_dim", "n_params"), [(2048, 8_131_585), (512, 4_985_857)])
def test_language_reward_head_sizes_match_reference(im_dim: int, n_params: int) -> None:
    head = LanguageReward(im_dim, 768, 1024)
    assert sum(p.numel() for p in head.parameters()) == n_params
    assert [k for k in head.state_dict() if k.endswith("weight")] == [f"pred.{i}.weight" for i in (0, 2, 4, 6, 8)]
    out = head(torch.zeros(3, im_dim), torch.zeros(3, im_dim), torch.zeros(3, 768))
    assert out.shape == (3,)


# --- loading ---------------------------------------------------------------------------------------------------


def test_round_trip_load_is_exact_and_frozen(tiny: dict) -> None:
    s = scorer(tiny)
    ids = s.tokenizer("Pick up the RED block")["input_ids"]  # lower-cased WordPiece over the real vocab
    assert s.tokenizer.unk_token_id not in ids and len(ids) == 7
    original = tiny["model"].state_dict()
    loaded = s.model.state_dict()
    assert original.keys() == loaded.keys()
    assert all(torch.equal(original[k], loaded[k]) for k in original)
    assert not s.model.training
    assert not any(p.requires_grad for p in s.model.parameters())


def test_position_ids_buffer_is_tolerated(tiny: dict, tmp_path: Path) -> None:
    extra = {"module.lang_enc.model.embeddings.position_ids": torch.arange(64).unsqueeze(0)}
    path = save_official(tiny["model"], tmp_path / "model.pt", extra=extra)
    s = R3MScorer.from_checkpoint(path, model="resnet18", tokenizer=str(tiny["vocab"]))
    assert s.score_episode(frames(2), PROMPTS[0]).shape == (2,)


def _edited_checkpoint(tiny: dict, tmp_path: Path, edit) -> Path:
    state = {f"module.{k}": v.clone() for k, v in tiny["model"].state_dict().items()}
    edit(state)
    torch.save({"r3m": state}, tmp_path / "model.pt")
    return tmp_path / "model.pt"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda s: s.pop("module.lang_rew.pred.4.bias"), "1 missing: lang_rew.pred.4.bias"),
        (lambda s: s.__setitem__("module.lang_rew.pred.10.weight", torch.zeros(1)), "1 unexpected: lang_rew.pred.10"),
        (
            lambda s: s.__setitem__("module.convnet.bn1.bias", torch.zeros(65)),
            "1 mis-shaped: convnet.bn1.bias [65]!=[64]",
        ),
    ],
    ids=["missing", "unexpected", "misshaped"],
)
def test_strict_load_names_the_bad_keys(tiny: dict, tmp_path: Path, edit, expected: str) -> None:
    path = _edited_checkpoint(tiny, tmp_path, edit)
    with pytest.raises(UsageError) as info:
        R3MScorer.from_checkpoint(path, model="resnet18", tokenizer=str(tiny["vocab"]))
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_local_checkpoint_is_verified_only_when_a_hash_sits_next_to_it(tiny: dict, tmp_path: Path) -> None:
    path = save_official(tiny["model"], tmp_path / "model.pt")
    R3MScorer.from_checkpoint(path, model="resnet18", tokenizer=str(tiny["vocab"]))
    assert not (tmp_path / "model.pt.sha256").exists()  # nothing written next to a user's file
    (tmp_path / "model.pt.sha256").write_text("0" * 64 + "  model.pt\n")
    with pytest.raises(UsageError, match="checksum mismatch"):
        R3MScorer.from_checkpoint(path, model="resnet18", tokenizer=str(tiny["vocab"]))


def test_a_folder_checkpoint_means_its_model_pt(tiny: dict, tmp_path: Path) -> None:
    folder = tmp_path / "r3m_18"
    save_official(tiny["model"], folder / "model.pt")
    s = R3MScorer.from_checkpoint(folder, model="resnet18", tokenizer=str(tiny["vocab"]))
    assert s.embed_frames(frames(2)).shape == (2, 512)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"is a folder without model\.pt; pass the official R3M model\.pt") as info:
        R3MScorer.from_checkpoint(tmp_path / "empty", model="resnet18", tokenizer=str(tiny["vocab"]))
    assert "\n" not in str(info.value)


def test_wrong_architecture_is_named(tiny: dict) -> None:
    with pytest.raises(
        UsageError, match="holds an R3M resnet18 but scorer\\.model is resnet50; set scorer\\.model: resnet18"
    ):
        R3MScorer.from_checkpoint(tiny["ckpt"], model="resnet50", tokenizer=str(tiny["vocab"]))


def test_unknown_model_id(tiny: dict) -> None:
    with pytest.raises(UsageError, match=r"unknown scorer\.model 'resnet99'; valid ids: resnet18, resnet34, resnet50"):
        R3MScorer.from_checkpoint(tiny["ckpt"], model="resnet99", tokenizer=str(tiny["vocab"]))


def test_truncated_and_foreign_files_fail_cleanly(tiny: dict, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny["ckpt"].read_bytes()[:5000])
    with pytest.raises(UsageError, match="truncated or corrupt"):
        read_checkpoint(truncated)
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(UsageError, match="no 'r3m' state dict"):
        read_checkpoint(tmp_path / "other.pt")
    torch.save({"r3m": {"w": torch.zeros(1)}, "obj": Path("x")}, tmp_path / "pickled.pt")
    with pytest.raises(UsageError, match="cannot be loaded safely"):  # weights_only refuses arbitrary objects
        read_checkpoint(tmp_path / "pickled.pt")
    with pytest.raises(UsageError, match="does not exist"):
        read_checkpoint(tmp_path / "absent.pt")


def test_upstream_checkpoint_without_language_head_is_refused(tiny: dict, tmp_path: Path) -> None:
    path = _edited_checkpoint(tiny, tmp_path, lambda s: [s.pop(k) for k in list(s) if k.startswith("module.lang_rew.")])
    with pytest.raises(UsageError, match="no language-reward head"):
        R3MScorer.from_checkpoint(path, model="resnet18", tokenizer=str(tiny["vocab"]))


def test_tokenizer_folder_without_vocab_or_with_the_wrong_vocab(tiny: dict, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"has no vocab\.txt"):
        R3MScorer.from_checkpoint(tiny["ckpt"], model="resnet18", tokenizer=str(tmp_path))
    write_vocab(tmp_path / "short", ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "pick"))
    with pytest.raises(UsageError, match="tokens but the checkpoint's DistilBERT embeds 52"):
        R3MScorer.from_checkpoint(tiny["ckpt"], model="resnet18", tokenizer=str(tmp_path / "short"))


# --- the reward itself -----------------------------------------------------------------------------------------


def reference_reward(model, tokenizer, episode: np.ndarray, prompt: str) -> np.ndarray:
    """The original's computation, written out: every step encodes (init, current) as a pair, fp32, masked mean."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    tokens = tokenizer([prompt], return_tensors="pt")
    with torch.no_grad():
        lang = model.lang_enc.model(**tokens).last_hidden_state.mean(1)  # single prompt: no padding
        out = []
        for t in range(len(episode)):
            pair = torch.from_numpy(episode[[0, t]]).permute(0, 3, 1, 2).float() / 255
            e = model.convnet((pair - mean) / std)
            out.append(model.lang_rew.pred(torch.cat([e[:1], e[1:], lang], -1)).item())
    return np.array(out, dtype=np.float32)


def test_scores_match_the_original_per_step_computation(tiny: dict) -> None:
    s = scorer(tiny)
    episode = frames(6)
    expected = reference_reward(tiny["model"], s.tokenizer, episode, PROMPTS[0])
    got = s.score_episode(episode, PROMPTS[0])
    assert got.dtype == np.float32 and got.shape == (6,)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert np.ptp(got) > 0  # the frames differ, so must the rewards


def test_batched_episodes_equal_one_by_one(tiny: dict) -> None:
    s = scorer(tiny, batch_size=4)  # 4 does not divide the 5+7+3 frames: chunks straddle episodes
    episodes = [frames(5, seed=1), frames(7, seed=2), frames(3, seed=3)]
    batched = s.score_episodes(episodes, PROMPTS)
    for ep, p, b in zip(episodes, PROMPTS, batched, strict=True):
        single = np.array([s.score_episode(ep[[0, t]], p)[1] for t in range(len(ep))])
        np.testing.assert_allclose(b, single, rtol=1e-4, atol=1e-5)


def test_cached_initial_frame_gives_identical_rewards(tiny: dict) -> None:
    s = scorer(tiny)
    episode = frames(8, seed=4)
    full = s.score_episode(episode, PROMPTS[1])
    e0 = s.embed_frames(episode[:1])  # computed once at reset, as a vector env would
    stepwise = [s.score_embeddings(e0, s.embed_frames(episode[t : t + 1]), [PROMPTS[1]]).item() for t in range(8)]
    np.testing.assert_allclose(full, stepwise, rtol=1e-5, atol=1e-6)
    # t = 0 is G(e0, e0, l), not zero (as in the original)
    assert full[0] == pytest.approx(stepwise[0], rel=1e-5)


def test_masked_pooling_is_batch_independent(tiny: dict) -> None:
    alone = scorer(tiny).embed_prompts(["open the drawer"])
    together = scorer(tiny).embed_prompts(["pick up the red block on the left of the table", "open the drawer"])
    torch.testing.assert_close(together[1:], alone, rtol=1e-4, atol=1e-5)


def test_r3m_pooling_is_the_unmasked_mean_over_the_padded_batch(tiny: dict) -> None:
    s = scorer(tiny, pooling="r3m")
    batch = ["pick up the red block on the left of the table", "open the drawer"]
    got = s.embed_prompts(batch)
    tokens = s.tokenizer(batch, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = s.model.lang_enc.model(**tokens).last_hidden_state.mean(1)
    torch.testing.assert_close(got, expected)
    alone = scorer(tiny, pooling="r3m").embed_prompts(["open the drawer"])
    assert not torch.allclose(got[1:], alone, atol=1e-3)  # the faithful mode really depends on the batch


def test_r3m_pooling_never_re_embeds_a_cached_prompt(tiny: dict) -> None:
    """Embedding one prompt later (as each episode does) must return the start-up batch's embedding."""
    s = scorer(tiny, pooling="r3m")
    everything = s.embed_prompts(["pick up the red block on the left of the table", "open the drawer"])
    torch.testing.assert_close(s.embed_prompts(["open the drawer"]), everything[1:])
    torch.testing.assert_close(s.embed_prompts(["open the drawer", "a new prompt"])[:1], everything[1:])


def test_prompts_are_cached_and_underscores_become_spaces(tiny: dict) -> None:
    s = scorer(tiny)
    first = s.embed_prompts(["push_the button"])
    calls = []
    original = s._encode_texts
    s._encode_texts = lambda prompts: calls.append(prompts) or original(prompts)
    again = s.embed_prompts(["push_the button"])
    assert calls == [] and torch.equal(first, again)
    torch.testing.assert_close(first, s.embed_prompts(["push the button"]))


def test_resize_option_changes_input_size(tiny: dict) -> None:
    s = scorer(tiny, resize=64)
    seen = []
    s.model.convnet.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[-2:])))
    s.score_episode(frames(2, size=32), PROMPTS[0])
    assert seen == [(64, 64)]
    plain = scorer(tiny)
    plain.model.convnet.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[-2:])))
    plain.score_episode(frames(2, size=32), PROMPTS[0])
    assert seen[-1] == (32, 32)


def test_bf16_and_channels_last_stay_close_to_fp32(tiny: dict) -> None:
    episode = frames(8, seed=5)
    ref = scorer(tiny).score_episode(episode, PROMPTS[0])
    cl = scorer(tiny, channels_last=True).score_episode(episode, PROMPTS[0])
    np.testing.assert_allclose(cl, ref, rtol=1e-4, atol=1e-5)
    bf16 = scorer(tiny, precision="bf16").score_episode(episode, PROMPTS[0])
    np.testing.assert_allclose(bf16, ref, atol=0.05 * max(1.0, float(np.abs(ref).max())))
    # the reward head stays fp32, so bf16 keeps the small frame-to-frame changes instead of rounding them away
    assert np.ptp(bf16) > 0 and np.corrcoef(bf16, ref)[0, 1] > 0.8


def test_standardize_is_per_prompt_and_running(tiny: dict) -> None:
    s = scorer(tiny, standardize=True)
    first = s.score_episodes([frames(6, seed=6), frames(6, seed=7)], PROMPTS[:2])
    for r in first:  # one episode per prompt so far: standardised by its own stats
        assert abs(float(r.mean())) < 1e-4 and abs(float(r.std()) - 1) < 1e-3
    raw = scorer(tiny).score_episode(frames(6, seed=6), PROMPTS[0])
    again = s.score_episode(frames(6, seed=6), PROMPTS[0])  # same data again: stats unchanged in mean
    np.testing.assert_allclose(again, first[0], rtol=1e-3, atol=1e-3)
    n, mean, _ = s.standardizer.stats[PROMPTS[0]]
    assert n == 12 and mean == pytest.approx(float(raw.mean()), rel=1e-5)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((3, 8, 8, 3), np.float32), "dtype uint8"),
        (np.zeros((8, 8, 3), np.uint8), r"shape \[N,H,W,3\]"),
        (np.zeros((3, 8, 8, 4), np.uint8), r"shape \[N,H,W,3\]"),
        (np.zeros((0, 8, 8, 3), np.uint8), "N >= 1"),
        ([[0]], "numpy uint8 array"),
    ],
)
def test_bad_frames_give_one_line(tiny: dict, bad, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        scorer(tiny).score_episode(bad, PROMPTS[0])


def test_bad_prompts_and_options(tiny: dict) -> None:
    s = scorer(tiny)
    with pytest.raises(UsageError, match="prompt list is empty"):
        s.embed_prompts([])
    with pytest.raises(UsageError, match="non-empty string"):
        s.score_episode(frames(2), "  ")
    with pytest.raises(UsageError, match="one prompt per episode"):
        s.score_episodes([frames(2)], PROMPTS[:2])
    with pytest.raises(UsageError, match="pooling must be one of masked_mean, r3m"):
        scorer(tiny, pooling="cls")
    with pytest.raises(UsageError, match="precision must be fp32 or bf16"):
        scorer(tiny, precision="fp16")


def test_make_scorer_from_config_section(tiny: dict) -> None:
    cfg = {"kind": "r3m", "model": "resnet18", "checkpoint": str(tiny["ckpt"]), "tokenizer": str(tiny["vocab"])}
    s = make_scorer(cfg, batch_size=3)
    assert isinstance(s, R3MScorer) and s.batch_size == 3 and s.pooling == "masked_mean"
    with pytest.raises(UsageError, match="unknown scorer config key"):
        make_scorer({**cfg, "poolng": "r3m"})
    with pytest.raises(UsageError, match=r"unknown scorer\.kind"):
        make_scorer({**cfg, "kind": "vip"})


def test_tiny_config_round_trips_through_shape_inference() -> None:
    from lamp.scorers.r3m import distilbert_config_from_state

    config = tiny_distilbert_config(dim=128, n_layers=2)
    model = random_r3m("resnet18", config, hidden_dim=32)
    inferred = distilbert_config_from_state(dict(model.state_dict()))
    for key in ("vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_position_embeddings"):
        assert getattr(inferred, key) == getattr(config, key)


def test_defaults_mirror_the_scorer_section_of_configs_yaml() -> None:
    from lamp.config import defaults
    from lamp.scorers import DEFAULTS

    assert dict(defaults().scorer) == DEFAULTS


def test_official_resnet50_shapes_infer_distilbert_base_and_match_reference_keys() -> None:
    """Full-size R3M-50 built on the meta device (no memory, no download): the key names and shapes of §2.2."""
    from transformers import DistilBertConfig

    from lamp.scorers.r3m import R3M, distilbert_config_from_state

    with torch.device("meta"):
        full = R3M("resnet50", DistilBertConfig(), hidden_dim=1024)
    state = dict(full.state_dict())
    inferred = distilbert_config_from_state(state)
    base = DistilBertConfig()  # == distilbert-base-uncased
    for key in ("vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_position_embeddings"):
        assert getattr(inferred, key) == getattr(base, key)
    shapes = {k: list(v.shape) for k, v in state.items()}
    assert shapes["convnet.conv1.weight"] == [64, 3, 7, 7]
    assert shapes["lang_enc.model.embeddings.word_embeddings.weight"] == [30522, 768]
    assert shapes["lang_enc.model.transformer.layer.5.attention.out_lin.weight"] == [768, 768]
    assert shapes["lang_enc.model.transformer.layer.0.ffn.lin1.weight"] == [3072, 768]
    assert shapes["lang_enc.model.transformer.layer.0.sa_layer_norm.weight"] == [768]
    assert shapes["lang_enc.model.transformer.layer.0.output_layer_norm.bias"] == [768]
    assert shapes["lang_rew.pred.0.weight"] == [1024, 4864] and shapes["lang_rew.pred.8.weight"] == [1, 1024]
    assert "convnet.bn1.num_batches_tracked" in state


def test_step_scorer_for_vector_envs_matches_episode_scoring(tiny: dict) -> None:
    from lamp.scorers import StepScorer

    s = scorer(tiny)
    episodes = [frames(5, seed=10), frames(5, seed=11)]
    expected = s.score_episodes(episodes, PROMPTS[:2])
    stepper = StepScorer(s, num_envs=2)
    with pytest.raises(UsageError, match="before every env was reset"):
        stepper.step(np.stack([episodes[0][0], episodes[1][0]]))
    first = stepper.reset([0, 1], np.stack([episodes[0][0], episodes[1][0]]), PROMPTS[:2])
    got = [first] + [stepper.step(np.stack([episodes[0][t], episodes[1][t]])) for t in range(1, 5)]
    np.testing.assert_allclose(np.stack(got, axis=1), np.stack(expected), rtol=1e-4, atol=1e-5)
    stepper.reset([1], episodes[0][:1], [PROMPTS[0]])  # env 1 starts a new episode; env 0 keeps its e0
    r = stepper.step(np.stack([episodes[0][2], episodes[0][2]]))
    np.testing.assert_allclose(r, [expected[0][2], expected[0][2]], rtol=1e-4, atol=1e-5)
