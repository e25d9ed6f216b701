"""Prompt styles: one YAML file each (templates with an optional `{noun}` slot, and synonyms per object class), or
the original LAMP repository's plain files (a .txt of templates with a `[NOUN]` placeholder, one per line, and a
folder of `synonym_<class>.txt` noun lists), so its exact prompts can be run.

A new prompt is drawn every episode: a uniform template, and for `{noun}` a uniform synonym of the episode's main
object class (`noun_sampling: similar`), or any noun of any class (`random`). Draws come from a caller-owned
`numpy.random.Generator`, so a run's prompt sequence is reproducible from its seed.
"""

from __future__ import annotations

import importlib.util
import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lamp.errors import UsageError

NOUN_SAMPLING = ("similar", "random", "none")
KNOWN_KEYS = {"name", "description", "noun_sampling", "templates", "nouns"}
GRID_FILES = (
    "ablation",
    "paper",
    "paper_rlbench",
    "transfer_check",
)  # `lamp ablate` files shipped next to the styles, not styles


def prompts_dir() -> Path:
    """The shipped prompt folder: `lamp.prompt_files` in an installed package, `prompts/` in a source checkout."""
    spec = importlib.util.find_spec("lamp.prompt_files")  # a namespace package: data files, no __init__.py
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[1] / "prompts"


def resolve_style_path(name_or_path: str | Path) -> Path:
    """A style given as a path (YAML, or an original-format .txt), or by the name of a shipped style ('similar' ->
    prompts/similar.yaml)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = prompts_dir() / f"{name_or_path}.yaml"
    if "/" not in str(name_or_path) and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in prompts_dir().glob("*.yaml") if p.stem not in GRID_FILES))
    raise UsageError(
        f"prompt file '{name_or_path}' does not exist; pass a style YAML or .txt path, or a shipped style: {names}"
    )


ORIGINAL_PLACEHOLDER = "[NOUN]"  # the original's noun slot in its .txt prompt files
_NEAR_PLACEHOLDER = re.compile(r"\[\s*nouns?\s*\]|\[NOUN(?!\])|(?<!\[)NOUN\]", re.IGNORECASE)


def read_lines(path: Path, what: str) -> list[str]:
    """The non-blank lines of a UTF-8 text file, stripped (the original's prompt and noun files: one per line)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UsageError(f"{what} '{path}' is not UTF-8 (bad byte at offset {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise UsageError(f"{what} '{path}' cannot be read ({err.strerror or err})") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise UsageError(f"{what} '{path}' is empty; write one entry per line")
    return lines


def templates_from_txt(path: Path) -> list[str]:
    """Templates from an original-format .txt: `[NOUN]` becomes the `{noun}` slot, other text is kept verbatim."""
    templates = []
    for number, line in enumerate(read_lines(path, "prompt file"), 1):
        near = _NEAR_PLACEHOLDER.search(line.replace(ORIGINAL_PLACEHOLDER, ""))
        if near:
            raise UsageError(
                f"prompt file '{path}' line {number} has '{near.group(0)}'; the placeholder is {ORIGINAL_PLACEHOLDER}"
            )
        escaped = line.replace("{", "{{").replace("}", "}}")  # braces in the text are text, not slots
        templates.append(escaped.replace(ORIGINAL_PLACEHOLDER, "{noun}"))
    return templates


def nouns_from_files(path: Path) -> dict[str, list[str]]:
    """Noun lists in the original's format: a folder of `synonym_<class>.txt` files (one noun per line; an
    underscore in <class> is a space), or one such file."""
    if path.is_dir():
        files = sorted(path.glob("synonym_*.txt"))
        if not files:
            raise UsageError(f"noun folder '{path}' has no synonym_<class>.txt files (the original's format)")
    elif path.is_file():
        files = [path]
    else:
        raise UsageError(f"noun lists '{path}' do not exist; pass a folder of synonym_<class>.txt files")
    nouns = {}
    for file in files:
        name = file.stem.removeprefix("synonym_").replace("_", " ").strip()
        if not name or not file.stem.startswith("synonym_"):
            raise UsageError(f"noun file '{file}' must be named synonym_<class>.txt (e.g. synonym_mug.txt)")
        nouns[name] = read_lines(file, "noun file")
    return nouns


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
    noun_fallback: bool = False  # a scene class without a noun list is named by itself (else refused at start)

    @classmethod
    def load(cls, name_or_path: str | Path, nouns: str | Path = "", noun_fallback: bool = False) -> PromptStyle:
        """A style from a YAML file (or a shipped style's name) or an original-format .txt; `nouns` (config
        `prompts.nouns`) replaces the style's noun lists with a file or folder in the original's format."""
        from lamp.config import read_yaml_mapping

        path = resolve_style_path(name_or_path)
        if path.suffix.lower() == ".txt":
            data: dict = {"name": path.stem, "description": f"the original's format: {path.name}"}
            data["templates"] = str(path)
        else:
            data = read_yaml_mapping(
                path, "prompt file", "pass a style YAML", "a mapping with 'templates' (and 'nouns')"
            )
        unknown = set(data) - KNOWN_KEYS
        if unknown:
            raise UsageError(f"prompt file '{path}' has unknown keys {sorted(unknown)}; allowed: {sorted(KNOWN_KEYS)}")
        templates = data.get("templates")
        if isinstance(templates, str):  # an original-format .txt, relative to the style file
            templates = templates_from_txt(path.parent / Path(templates).expanduser())
        if not templates or not isinstance(templates, list) or not all(isinstance(t, str) and t for t in templates):
            raise UsageError(f"prompt file '{path}' has no templates; add a 'templates:' list of sentences")
        for template in templates:
            try:
                bad = _slots(template) - {"noun"}
            except ValueError:
                bad = {"an unmatched brace"}
            if bad:
                raise UsageError(
                    f"prompt file '{path}': template '{template}' uses {sorted(bad)}; only {{noun}} exists"
                )
        uses_noun = any("noun" in _slots(t) for t in templates)
        nouns_raw = data.get("nouns") or {}
        if isinstance(nouns_raw, str):  # original-format noun lists, relative to the style file
            nouns_raw = nouns_from_files(path.parent / Path(nouns_raw).expanduser())
        if nouns:
            nouns_raw = nouns_from_files(Path(nouns).expanduser())
            if not uses_noun:
                raise UsageError(
                    f"prompt file '{path}' has no {ORIGINAL_PLACEHOLDER} (or {{noun}}) placeholder, so the noun lists "
                    f"'{nouns}' would never be used; drop prompts.nouns or use templates with the placeholder"
                )
        if not isinstance(nouns_raw, dict) or not all(
            isinstance(v, list) and v and all(isinstance(s, str) and s for s in v) for v in nouns_raw.values()
        ):
            raise UsageError(f"prompt file '{path}': 'nouns' must map each object class to a non-empty list of words")
        if uses_noun and not nouns_raw and not noun_fallback:
            raise UsageError(
                f"prompt file '{path}' has noun placeholders but no noun lists; add 'nouns:' per object class, or pass "
                "--prompts.nouns FOLDER (synonym_<class>.txt files) or --prompts.noun_fallback true (class names)"
            )
        lists = {tuple(v) for v in nouns_raw.values()}
        # the original's random-noun folder holds one identical list per class (the union): that is random sampling
        default = ("random" if len(nouns_raw) > 1 and len(lists) == 1 else "similar") if uses_noun else "none"
        sampling = data.get("noun_sampling", default)
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
            noun_fallback=noun_fallback,
        )

    def check_coverage(self, noun_classes: list[str]) -> str:
        """One line on which scene classes the noun lists cover; a gap is refused unless `noun_fallback` (then
        those classes are named by themselves). The original's lists were written for ShapeNet classes."""
        classes = sorted(set(noun_classes))
        if self.noun_sampling == "none":
            return "prompt nouns: none (the templates have no noun slot)"
        if self.noun_sampling == "random":
            return f"prompt nouns: random sampling ({len(self.all_nouns())} nouns, whatever the scene)"
        missing = self.covers(classes)
        line = f"prompt nouns: lists for {len(classes) - len(missing)} of {len(classes)} scene classes"
        if not missing:
            return line
        if not self.noun_fallback:
            raise UsageError(
                f"prompt style '{self.path}' has no noun list for the scene classes {missing}; add "
                "synonym_<class>.txt files (or 'nouns:' entries), or pass --prompts.noun_fallback true to use "
                "the class name itself"
            )
        return f"{line}; {', '.join(missing)} use the class name itself (prompts.noun_fallback)"

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
