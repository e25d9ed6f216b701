"""Prompt styles: one YAML file each (templates with an optional `{noun}` slot, and synonyms per object class).

A new prompt is drawn every episode: a uniform template, and for `{noun}` a uniform synonym of the episode's main
object class (`noun_sampling: similar`), or any noun of any class (`random`). Draws come from a caller-owned
`numpy.random.Generator`, so a run's prompt sequence is reproducible from its seed.
"""

from __future__ import annotations

import importlib.util
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lamp.errors import UsageError

NOUN_SAMPLING = ("similar", "random", "none")
KNOWN_KEYS = {"name", "description", "noun_sampling", "templates", "nouns"}
GRID_FILES = ("ablation", "paper", "transfer_check")  # `lamp ablate` files shipped next to the styles, not styles


def prompts_dir() -> Path:
    """The shipped prompt folder: `lamp.prompt_files` in an installed package, `prompts/` in a source checkout."""
    spec = importlib.util.find_spec("lamp.prompt_files")  # a namespace package: data files, no __init__.py
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[1] / "prompts"


def resolve_style_path(name_or_path: str | Path) -> Path:
    """A style given as a path, or by the name of a shipped style ('similar' -> prompts/similar.yaml)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = prompts_dir() / f"{name_or_path}.yaml"
    if "/" not in str(name_or_path) and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in prompts_dir().glob("*.yaml") if p.stem not in GRID_FILES))
    raise UsageError(f"prompt file '{name_or_path}' does not exist; pass a style YAML path or a shipped style: {names}")


def _slots(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


@dataclass(frozen=True)
class PromptStyle:
    """A validated prompt style; `sample` draws one prompt for an episode whose main object is `noun_class`."""

    name: str
    description: str
    noun_sampling: str
    templates: tuple[str, ...]
    nouns: dict[str, tuple[str, ...]]
    path: Path

    @classmethod
    def load(cls, name_or_path: str | Path) -> PromptStyle:
        from lamp.config import read_yaml_mapping

        path = resolve_style_path(name_or_path)
        data = read_yaml_mapping(path, "prompt file", "pass a style YAML", "a mapping with 'templates' (and 'nouns')")
        unknown = set(data) - KNOWN_KEYS
        if unknown:
            raise UsageError(f"prompt file '{path}' has unknown keys {sorted(unknown)}; allowed: {sorted(KNOWN_KEYS)}")
        templates = data.get("templates")
        if not templates or not isinstance(templates, list) or not all(isinstance(t, str) and t for t in templates):
            raise UsageError(f"prompt file '{path}' has no templates; add a 'templates:' list of sentences")
        for template in templates:
            bad = _slots(template) - {"noun"}
            if bad:
                raise UsageError(
                    f"prompt file '{path}': template '{template}' uses {sorted(bad)}; only {{noun}} exists"
                )
        uses_noun = any("noun" in _slots(t) for t in templates)
        nouns_raw = data.get("nouns") or {}
        if not isinstance(nouns_raw, dict) or not all(
            isinstance(v, list) and v and all(isinstance(s, str) and s for s in v) for v in nouns_raw.values()
        ):
            raise UsageError(f"prompt file '{path}': 'nouns' must map each object class to a non-empty list of words")
        if uses_noun and not nouns_raw:
            raise UsageError(f"prompt file '{path}' has {{noun}} templates but no nouns; add 'nouns:' per object class")
        sampling = data.get("noun_sampling", "similar" if uses_noun else "none")
        if sampling not in NOUN_SAMPLING:
            raise UsageError(f"prompt file '{path}': noun_sampling '{sampling}' is unknown; use one of {NOUN_SAMPLING}")
        if uses_noun and sampling == "none":
            raise UsageError(
                f"prompt file '{path}' has {{noun}} templates but noun_sampling 'none'; use similar/random"
            )
        return cls(
            name=str(data.get("name", path.stem)),
            description=str(data.get("description", "")),
            noun_sampling=sampling,
            templates=tuple(templates),
            nouns={str(k): tuple(dict.fromkeys(v)) for k, v in nouns_raw.items()},
            path=path,
        )

    def all_nouns(self) -> tuple[str, ...]:
        """Every synonym of every class, without duplicates, in file order (the pool of `random` sampling)."""
        return tuple(dict.fromkeys(word for words in self.nouns.values() for word in words))

    def synonyms(self, noun_class: str) -> tuple[str, ...]:
        """Synonyms of a class; a class the file does not list is named by itself (and `covers` reports it)."""
        return self.nouns.get(noun_class, (noun_class,))

    def covers(self, noun_classes: list[str]) -> list[str]:
        """The classes of `noun_classes` that this style has no synonyms for (empty when all are covered)."""
        if self.noun_sampling != "similar":
            return []
        return [c for c in noun_classes if c not in self.nouns]

    def sample(self, noun_class: str, rng: np.random.Generator) -> str:
        """One prompt: a uniform template; `{noun}` filled as the style's noun_sampling says."""
        template = self.templates[int(rng.integers(len(self.templates)))]
        if "noun" not in _slots(template):
            return template
        pool = self.all_nouns() if self.noun_sampling == "random" else self.synonyms(noun_class)
        return template.format(noun=pool[int(rng.integers(len(pool)))])

    def expansions(self, noun_classes: list[str] | None = None) -> list[str]:
        """Every prompt this style can produce for the given classes (all classes by default), for precomputing."""
        classes = noun_classes if noun_classes is not None else list(self.nouns)
        pool = self.all_nouns() if self.noun_sampling == "random" else [w for c in classes for w in self.synonyms(c)]
        out: dict[str, None] = {}
        for template in self.templates:
            if "noun" in _slots(template):
                out.update((template.format(noun=word), None) for word in pool)
            else:
                out[template] = None
        return list(out)
