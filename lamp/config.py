"""Config loading: `defaults` + named blocks + an optional YAML file + dotted flags, merged by OmegaConf.

Every problem a user can make (unknown block or key, wrong type, unreadable file) becomes one `UsageError` line that
names the culprit and suggests the nearest valid name, before anything is written to disk.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from lamp.atomic import atomic_write_bytes
from lamp.errors import UsageError

CONFIGS_FILE = Path(__file__).with_name("configs.yaml")


@lru_cache(maxsize=1)
def _blocks() -> dict[str, Any]:
    """All blocks of lamp/configs.yaml as plain dicts (cached; the file ships inside the package)."""
    with open(CONFIGS_FILE, encoding="utf-8") as f:
        blocks = yaml.safe_load(f)
    if not isinstance(blocks, dict) or not isinstance(blocks.get("defaults"), dict):
        raise UsageError(f"{CONFIGS_FILE} must be a mapping with a 'defaults' block; reinstall lamp")
    return blocks


def block_names() -> list[str]:
    """Names usable with `--configs` (every block but `defaults`)."""
    return [name for name in _blocks() if name != "defaults"]


def defaults() -> DictConfig:
    """A fresh copy of the `defaults` block."""
    return OmegaConf.create(_blocks()["defaults"])


def flat_keys(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Map 'a.b.c' -> leaf value for every leaf of a nested dict (lists are leaves)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict | DictConfig) and len(value) > 0:
            out.update(flat_keys(value, path + "."))
        else:
            out[path] = value
    return out


def _suggest(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    """Return `value` converted to the default's type, or raise a UsageError naming key, source and expected type."""
    if default is None or value is None:
        return value

    def wrong(expected: str) -> UsageError:
        return UsageError(
            f"config key '{key}' expects {expected} but {source} gives {value!r} ({type(value).__name__}); "
            f"the default is {default!r}"
        )

    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise wrong("true/false")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # lets users write --run.steps 1e6
        raise wrong("an integer")
    if isinstance(default, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise wrong("a number")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise wrong("a string")
    if isinstance(default, list | ListConfig):
        if isinstance(value, list | ListConfig):
            return value
        raise wrong("a list")
    if isinstance(default, dict | DictConfig):
        raise wrong("a mapping of sub-keys")
    return value


def _apply(cfg: DictConfig, updates: dict[str, Any], source: str) -> None:
    """Merge flat 'a.b' -> value updates into cfg, validating each key and type against the defaults."""
    known = flat_keys(_blocks()["defaults"])
    sections = {k.rsplit(".", 1)[0] for k in known if "." in k}
    for key, value in updates.items():
        if key not in known:
            if key in sections:
                raise UsageError(f"config key '{key}' is a section, not a value ({source}); set one of its sub-keys")
            raise UsageError(
                f"unknown config key '{key}' ({source}){_suggest(key, known)} "
                "(every key is listed in lamp/configs.yaml)"
            )
        OmegaConf.update(cfg, key, _coerce(key, value, known[key], source), merge=False)


def read_yaml_mapping(
    path: str | Path,
    what: str = "config file",
    fix: str = "pass an existing YAML file to --config-file",
    shape: str = "a mapping of keys (like lamp/configs.yaml's defaults)",
) -> dict[str, Any]:
    """Read a user YAML file that must hold a mapping (`safe_load` only); missing, unreadable or malformed files are
    one-line UsageErrors naming `what`, the file, the line, and the fix."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UsageError(f"{what} '{p}' does not exist; {fix}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"{what} '{p}' is not valid YAML{where}: {problem}; fix the syntax") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{what} '{p}' cannot be read ({e.__class__.__name__}); check its permissions") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{what} '{p}' must be {shape}")
    return data


def parse_flags(args: Sequence[str]) -> dict[str, Any]:
    """Turn ['--agent.lr', '3e-4', '--seed=2'] into {'agent.lr': 3e-4, 'seed': 2}; values are parsed as YAML."""
    dotlist: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) < 3:
            raise UsageError(f"unexpected argument '{token}'; config overrides look like --agent.lr 3e-4")
        if "=" in token:
            dotlist.append(token[2:])
            i += 1
            continue
        if i + 1 >= len(args):
            raise UsageError(f"flag '{token}' has no value; write it as {token} VALUE")
        dotlist.append(f"{token[2:]}={args[i + 1]}")
        i += 2
    try:
        parsed = OmegaConf.to_container(OmegaConf.from_dotlist(dotlist))
    except Exception as e:  # OmegaConf raises several grammar error types
        raise UsageError(f"cannot parse overrides {dotlist}: {str(e).splitlines()[0]}") from None
    return flat_keys(parsed)


def build_config(
    configs: Sequence[str] = (),
    config_file: str | Path | None = None,
    flags: Sequence[str] = (),
    overrides: dict[str, Any] | None = None,
    base: DictConfig | dict[str, Any] | None = None,
) -> DictConfig:
    """Resolve a run's config: defaults, `base` (e.g. a source run's saved config), named blocks in order, the YAML
    file, then dotted flags and overrides."""
    cfg = defaults()
    if base is not None:
        tree = OmegaConf.to_container(base) if isinstance(base, DictConfig) else base
        _apply(cfg, flat_keys(tree), "the saved run config")
    names = block_names()
    for name in configs:
        if name not in names:
            raise UsageError(f"unknown config block '{name}'{_suggest(name, names)} (valid: {', '.join(names)})")
        _apply(cfg, flat_keys(_blocks()[name]), f"block '{name}' in {CONFIGS_FILE.name}")
    if config_file is not None:
        _apply(cfg, flat_keys(read_yaml_mapping(config_file)), f"file '{config_file}'")
    _apply(cfg, parse_flags(flags), "the command line")
    if overrides:
        _apply(cfg, overrides, "the command line")
    OmegaConf.set_readonly(cfg, True)
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML text."""
    return OmegaConf.to_yaml(cfg)


def save_config(cfg: DictConfig, logdir: str | Path) -> Path:
    """Write LOGDIR/config.yaml atomically (temp file, fsync, rename) and return its path."""
    path = Path(logdir) / "config.yaml"
    atomic_write_bytes(path, to_yaml(cfg).encode("utf-8"))
    return path


def load_saved_config(logdir: str | Path) -> DictConfig:
    """Read a run's saved config.yaml (e.g. to resume or fine-tune from it)."""
    path = Path(logdir) / "config.yaml"
    if not path.is_file():
        raise UsageError(f"'{logdir}' has no config.yaml; is it a lamp run directory?")
    return OmegaConf.create(read_yaml_mapping(path))
