"""Prompt styles: the six shipped styles load, sampling is seeded and uses the right noun, bad files are one line."""

from __future__ import annotations

import re
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
        ("templates: ['pick up the {noun}']\n", "has noun placeholders but no noun lists; add 'nouns:'"),
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


# ---- the original repository's plain files: templates with [NOUN], a folder of synonym_<class>.txt


def write_original(tmp_path: Path) -> tuple[Path, Path]:
    verbs = tmp_path / "similar_verb_3.txt"
    verbs.write_text(
        "Pick up the [NOUN]\n\n  The [NOUN] is hoisted up by hand  \nA {curly} remark about the [NOUN]\n\n"
    )
    nouns = tmp_path / "similar_noun"
    nouns.mkdir()
    (nouns / "synonym_mug.txt").write_text("mug\ncup\ntumbler\n")
    (nouns / "synonym_coffee_machine.txt").write_text("coffee machine\nespresso maker")  # no trailing newline
    return verbs, nouns


def test_original_format_files_give_the_same_templates_and_nouns(tmp_path: Path) -> None:
    verbs, nouns = write_original(tmp_path)
    style = PromptStyle.load(verbs, nouns)
    assert style.name == "similar_verb_3" and style.noun_sampling == "similar"
    assert style.templates == (
        "Pick up the {noun}",
        "The {noun} is hoisted up by hand",
        "A {{curly}} remark about the {noun}",
    )
    assert style.nouns == {"coffee machine": ("coffee machine", "espresso maker"), "mug": ("mug", "cup", "tumbler")}
    assert "A {curly} remark about the tumbler" in style.expansions(["mug"])
    assert len(style.expansions()) == 3 * 5
    prompt = style.sample("mug", np.random.default_rng(0))
    assert any(prompt.endswith(w) or f" {w} " in prompt for w in ("mug", "cup", "tumbler")), prompt
    assert style.check_coverage(["mug", "coffee machine", "mug"]) == "prompt nouns: lists for 2 of 2 scene classes"


def test_a_style_yaml_may_point_at_original_format_files(tmp_path: Path) -> None:
    write_original(tmp_path)
    path = tmp_path / "orig.yaml"
    path.write_text("name: orig\ntemplates: similar_verb_3.txt\nnouns: similar_noun\n")  # relative to the YAML
    style = PromptStyle.load(path)
    assert style.name == "orig" and len(style.templates) == 3 and set(style.nouns) == {"mug", "coffee machine"}


def test_uncovered_scene_classes_are_refused_unless_the_fallback_is_asked_for(tmp_path: Path) -> None:
    verbs, nouns = write_original(tmp_path)
    with pytest.raises(UsageError) as info:
        PromptStyle.load(verbs, nouns).check_coverage(["ball", "mug", "block"])
    message = str(info.value)
    assert (
        "no noun list for the scene classes ['ball', 'block']" in message and "--prompts.noun_fallback true" in message
    )
    style = PromptStyle.load(verbs, nouns, noun_fallback=True)
    line = style.check_coverage(["ball", "mug", "block"])
    assert (
        line
        == "prompt nouns: lists for 1 of 3 scene classes; ball, block use the class name itself (prompts.noun_fallback)"
    )
    assert style.sample("ball", np.random.default_rng(1)).count("ball") == 1
    with pytest.raises(UsageError, match="noun placeholders but no noun lists"):
        PromptStyle.load(verbs)  # [NOUN] templates, no lists, no fallback
    assert (
        PromptStyle.load(verbs, noun_fallback=True)
        .check_coverage(["ball"])
        .endswith("use the class name itself (prompts.noun_fallback)")
    )


def test_the_originals_random_noun_folder_is_random_sampling(tmp_path: Path) -> None:
    verbs, _ = write_original(tmp_path)
    folder = tmp_path / "rand_noun"
    folder.mkdir()
    for name in ("mug", "bag", "pot"):  # the original ships one identical list (the union) per class
        (folder / f"synonym_{name}.txt").write_text("mug\nbag\npurse\npot\n")
    style = PromptStyle.load(verbs, folder)
    assert style.noun_sampling == "random" and style.all_nouns() == ("mug", "bag", "purse", "pot")
    assert style.check_coverage(["ball", "block"]) == "prompt nouns: random sampling (4 nouns, whatever the scene)"


def test_a_template_file_without_placeholder_is_a_plain_style(tmp_path: Path) -> None:
    hamlet = tmp_path / "hamlet.txt"
    hamlet.write_text("Holla, Barnardo.\nBARNARDO  Say, what, is Horatio there?\n")
    style = PromptStyle.load(hamlet)
    assert style.noun_sampling == "none" and style.sample("mug", np.random.default_rng(0)) in style.templates
    _, nouns = write_original(tmp_path)
    with pytest.raises(UsageError, match=r"has no \[NOUN\] \(or \{noun\}\) placeholder, so the noun lists"):
        PromptStyle.load(hamlet, nouns)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\n  \n", "is empty; write one entry per line"),
        (b"Pick up the \xff[NOUN]\n", "is not UTF-8 (bad byte at offset 12); save it as UTF-8"),
        (b"Pick up the [NOUN]\nGrab the [noun]\n", "line 2 has '[noun]'; the placeholder is [NOUN]"),
        (b"Grab the [NOUN\n", "line 1 has '[NOUN'; the placeholder is [NOUN]"),
    ],
)
def test_bad_original_format_files_are_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "prompts.txt"
    path.write_bytes(content)
    _, nouns = write_original(tmp_path)
    with pytest.raises(UsageError) as info:
        PromptStyle.load(path, nouns)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_bad_noun_lists_are_one_line(tmp_path: Path) -> None:
    verbs, nouns = write_original(tmp_path)
    (tmp_path / "empty").mkdir()
    (nouns / "synonym_bag.txt").write_text("\n")
    for where, message in (
        (tmp_path / "missing", "do not exist; pass a folder of synonym_<class>.txt files"),
        (tmp_path / "empty", "has no synonym_<class>.txt files"),
        (nouns, f"noun file '{nouns / 'synonym_bag.txt'}' is empty"),
        (verbs, "must be named synonym_<class>.txt"),
    ):
        with pytest.raises(UsageError, match=re.escape(message)):
            PromptStyle.load(verbs, where)


def test_shipped_styles_cover_every_backends_pretraining_classes() -> None:
    from envs import pretrain_noun_classes
    from lamp.config import build_config

    objects = list(build_config([]).rlbench.objects)
    for backend, pool in (("metaworld", "disjoint"), ("metaworld", "strict"), ("rlbench", "")):
        classes = pretrain_noun_classes(backend, pool, objects)
        assert classes and (backend == "metaworld" or classes == sorted(objects))
        for name in STYLES:
            style = PromptStyle.load(name)
            line = style.check_coverage(classes)  # raises when a class has no list
            if style.noun_sampling == "similar":
                assert line.endswith(f"lists for {len(classes)} of {len(classes)} scene classes"), (name, line)


def test_pretrain_reads_original_files_from_the_command_line_and_refuses_a_gap_before_writing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lamp.cli import _split_configs, app

    verbs, nouns = write_original(tmp_path)
    logdir = tmp_path / "run"
    args = ["pretrain", "--configs", "smoke", "--prompts", str(verbs), "--prompts.nouns", str(nouns)]
    result = CliRunner().invoke(app, _split_configs([*args, "--logdir", str(logdir)]), env={"COLUMNS": "300"})
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "has no noun list for the scene classes ['ball', 'block'," in errors[0] and "noun_fallback" in errors[0]
    assert not logdir.exists()  # refused before anything was written
