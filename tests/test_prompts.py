"""Prompt styles: the six shipped styles load, sampling is seeded and uses the right noun, bad files are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lamp.errors import UsageError
from lamp.prompts import PromptStyle, prompts_dir, resolve_style_path

STYLES = [
    "single",
    "similar",
    "similar_verbs_random_nouns",
    "random_verbs_similar_nouns",
    "random_verbs_random_nouns",
    "shakespeare",
]


@pytest.mark.parametrize("name", STYLES)
def test_shipped_styles_load(name: str) -> None:
    style = PromptStyle.load(name)
    assert style.name == name and style.description
    assert len(style.templates) == (1 if name == "single" else 40)
    assert len(set(style.templates)) == len(style.templates)


def test_styles_cover_the_embedded_simulators_objects() -> None:
    classes = [
        "button",
        "faucet",
        "door",
        "mug",
        "lid",
        "ball",
        "block",
        "box",
        "dial",
        "puck",
        "drawer",
        "hammer",
        "handle",
        "lever",
        "plate",
        "peg",
        "stick",
        "window",
        "coffee machine",
    ]
    for name in STYLES:
        assert PromptStyle.load(name).covers(classes) == [], name


def test_similar_sampling_uses_the_episode_noun_and_is_reproducible() -> None:
    style = PromptStyle.load("similar")
    a = [style.sample("faucet", np.random.default_rng(7)) for _ in range(3)]
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    seq1 = [style.sample("faucet", rng1) for _ in range(50)]
    seq2 = [style.sample("faucet", rng2) for _ in range(50)]
    assert seq1 == seq2 and len(set(a)) == 1
    assert len(set(seq1)) > 10  # templates and synonyms really vary
    for prompt in seq1:
        assert any(word in prompt for word in style.nouns["faucet"]), prompt
        assert "{noun}" not in prompt


def test_random_nouns_ignore_the_object_present() -> None:
    style = PromptStyle.load("random_verbs_random_nouns")
    rng = np.random.default_rng(0)
    prompts = [style.sample("faucet", rng) for _ in range(300)]
    faucet_words = set(style.nouns["faucet"])
    other = [p for p in prompts if not any(w in p for w in faucet_words)]
    assert len(other) > 200  # most draws name objects of other classes


def test_shakespeare_has_no_slot_and_unknown_class_falls_back_to_its_name() -> None:
    style = PromptStyle.load("shakespeare")
    assert style.noun_sampling == "none" and style.sample("faucet", np.random.default_rng(0)) in style.templates
    similar = PromptStyle.load("similar")
    assert similar.synonyms("spaceship") == ("spaceship",) and similar.covers(["spaceship"]) == ["spaceship"]


def test_expansions_cover_every_sample() -> None:
    style = PromptStyle.load("similar")
    expansions = set(style.expansions(["mug"]))
    assert len(expansions) == 40 * len(style.nouns["mug"])
    rng = np.random.default_rng(1)
    assert {style.sample("mug", rng) for _ in range(100)} <= expansions


def test_prompts_dir_and_resolution(tmp_path: Path) -> None:
    assert (prompts_dir() / "similar.yaml").is_file()
    assert resolve_style_path("similar") == prompts_dir() / "similar.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("templates: [hello]\n")
    assert resolve_style_path(own) == own
    with pytest.raises(UsageError, match=r"prompt file .nosuch. does not exist; .*similar"):
        resolve_style_path("nosuch")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "has no templates; add a 'templates:' list"),
        ("templates: []\n", "has no templates"),
        ("templates: ['pick up the {noun}']\n", "has {noun} templates but no nouns; add 'nouns:' per object class"),
        ("templates: ['x {verb}']\n", "uses ['verb']; only {noun} exists"),
        ("templates: [a]\nnouns: {mug: []}\n", "'nouns' must map each object class to a non-empty list"),
        ("templates: [a]\nnoun_sampling: sometimes\n", "noun_sampling 'sometimes' is unknown"),
        ("templates: [a]\ncolour: red\n", "unknown keys ['colour']"),
        ("templates: [a\n", "is not valid YAML at line 2"),
        ("- a\n", "must be a mapping"),
    ],
)
def test_bad_style_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "style.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        PromptStyle.load(path)
    assert message in str(info.value) and "\n" not in str(info.value)
