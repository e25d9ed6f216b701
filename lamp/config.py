"""Config loading: `defaults` + named blocks + an optional YAML file + dotted flags, merged by OmegaConf.

Every problem a user can make (unknown block or key, wrong type, a value out of its range, unreadable file) becomes one
`UsageError` line that names the culprit and suggests the nearest valid name, before anything is written to disk. The
allowed range of every numeric key is declared once, in RANGES below, next to the loading code. A resumed run is its
saved config.yaml plus what its command line sets itself, and that may only change RUNTIME_KEYS (`resume_config`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Range:
    """The values a numeric key may take: bounds (None = unbounded), inclusive unless `*_open`; `pow2` also asks
    for a power of two (image sizes the CNN halves down to 4x4)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    pow2: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return not self.pow2 or (value == int(value) and int(value) > 0 and int(value) & (int(value) - 1) == 0)

    def describe(self, integer: bool = False) -> str:
        """'an integer ≥ 1', 'a number > 0', 'a number in [0, 1)', 'a power of two in [8, 1024]'."""
        kind = "a power of two" if self.pow2 else "an integer" if integer else "a number"
        if self.low is not None and self.high is not None:
            return (
                f"{kind} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
            )
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '≥'} {self.low:g}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '≤'} {self.high:g}"
        return kind


POSITIVE = Range(0, low_open=True)  # rates, scales that divide or multiply, time-outs
NON_NEGATIVE = Range(0)  # loss weights, counts where 0 means "off"
AT_LEAST_1 = Range(1)  # sizes, counts, intervals in steps
PROBABILITY = Range(0, 1)
DECAY = Range(0, 1, high_open=True)  # EMA decays and mixing fractions: 1 would never move

# Every numeric key of the `defaults` block and the values it may take, checked wherever a value enters a config
# (blocks, --config-file, flags, a saved run config), so a bad one is one error line before anything is written.
# tests/test_config.py fails when a numeric key of `defaults` has no entry here.
RANGES: dict[str, Range] = {
    "seed": NON_NEGATIVE,
    "threads": NON_NEGATIVE,  # 0 = torch's default
    "rlbench.variation": Range(-1),  # -1 = a new variation every episode
    "rlbench.reset_retries": NON_NEGATIVE,
    "rlbench.num_objects": AT_LEAST_1,
    "run.steps": AT_LEAST_1,
    "run.log_every": AT_LEAST_1,
    "run.save_every": AT_LEAST_1,
    "run.save_minutes": NON_NEGATIVE,  # 0 = step-based saves only
    "run.video_every": AT_LEAST_1,
    "run.eval_every": AT_LEAST_1,
    "run.eval_episodes": AT_LEAST_1,
    "run.prefill": NON_NEGATIVE,
    "run.compile_min_updates": NON_NEGATIVE,
    "run.status_seconds": POSITIVE,
    "env.size": Range(8, 1024, pow2=True),
    "env.episode_length": AT_LEAST_1,
    "env.action_repeat": AT_LEAST_1,
    "env.action_scale": POSITIVE,
    "env.decimate": PROBABILITY,  # fraction of triangles kept; 0 = full meshes
    "env.max_scenes": NON_NEGATIVE,  # 0 = keep all
    "env.workers": AT_LEAST_1,
    "env.worker_timeout": POSITIVE,
    "textures.p_default": PROBABILITY,
    "textures.size": AT_LEAST_1,
    "scorer.image_size": Range(8),  # also a whole multiple of env.size (checked with the run)
    "scorer.resize": NON_NEGATIVE,  # 0 = frames at their own size
    "scorer.batch_size": AT_LEAST_1,
    "scorer.clip_scale": POSITIVE,
    "agent.action_dim": AT_LEAST_1,
    "agent.deter": AT_LEAST_1,
    "agent.hidden": AT_LEAST_1,
    "agent.stoch": AT_LEAST_1,
    "agent.classes": AT_LEAST_1,
    "agent.unimix": DECAY,
    "agent.depth": AT_LEAST_1,
    "agent.units": AT_LEAST_1,
    "agent.layers": AT_LEAST_1,
    "agent.bins": Range(2),  # two-hot encoding needs two bins
    "agent.free_nats": NON_NEGATIVE,
    "agent.dyn_scale": NON_NEGATIVE,
    "agent.rep_scale": NON_NEGATIVE,
    "agent.rec_scale": NON_NEGATIVE,
    "agent.rew_scale": NON_NEGATIVE,
    "agent.con_scale": NON_NEGATIVE,
    "agent.horizon": AT_LEAST_1,
    "agent.discount": Range(0, 1, low_open=True),
    "agent.lam": PROBABILITY,
    "agent.actent": NON_NEGATIVE,
    "agent.slow_critic_fraction": Range(0, 1, low_open=True),
    "agent.slowreg": NON_NEGATIVE,
    "agent.repval": NON_NEGATIVE,
    "agent.retnorm_decay": DECAY,
    "agent.retnorm_lo": PROBABILITY,
    "agent.retnorm_hi": PROBABILITY,
    "agent.min_std": POSITIVE,
    "agent.max_std": POSITIVE,
    "agent.model_lr": POSITIVE,
    "agent.actor_lr": POSITIVE,
    "agent.critic_lr": POSITIVE,
    "agent.model_eps": POSITIVE,
    "agent.ac_eps": POSITIVE,
    "agent.model_clip": POSITIVE,
    "agent.ac_clip": POSITIVE,
    "agent.batch_size": AT_LEAST_1,
    "agent.batch_length": Range(2),  # one step has no transition to learn from
    "agent.train_ratio": NON_NEGATIVE,  # 0 = collect only
    "agent.max_bad_steps": AT_LEAST_1,
    "agent.expl.members": Range(2),  # disagreement is the spread of at least two members
    "agent.expl.layers": AT_LEAST_1,
    "agent.expl.units": AT_LEAST_1,
    "agent.expl.out_scale": NON_NEGATIVE,
    "agent.expl.intr_scale": NON_NEGATIVE,
    "agent.expl.extr_scale": NON_NEGATIVE,
    "agent.expl.lr": POSITIVE,
    "agent.expl.eps": POSITIVE,
    "agent.expl.clip": POSITIVE,
    "agent.expl.norm_decay": DECAY,
    "replay.capacity": AT_LEAST_1,
    "replay.chunk": AT_LEAST_1,
    "replay.cache_chunks": AT_LEAST_1,
}

# Keys (or whole sections) a resumed run may change on its command line: where and how fast it runs, how long, and
# what it logs, never what it learns. Every other key (agent.*, env.*, textures.*, prompts.*, scorer.*, finetune.*,
# rlbench.*, replay.capacity, replay.chunk, seed) is a learning key: a resume keeps its saved value and refuses a new
# one (`resume_config`). replay.chunk is not runtime: chunk ids on disk and the checkpoint's pointer count in it.
RUNTIME_KEYS: tuple[str, ...] = (
    "logdir",
    "threads",
    "device",
    "deterministic",
    "run",  # the whole section: steps may be raised, intervals changed
    "agent.precision",
    "agent.compile",
    "agent.channels_last",
    "agent.max_bad_steps",
    "env.workers",
    "env.worker_timeout",
    "env.max_scenes",
    "rlbench.headless",  # a CoppeliaSim window or not
    "scorer.device",
    "scorer.batch_size",
    "scorer.precision",
    "scorer.channels_last",
    "replay.directory",
    "replay.cache_chunks",
)

# Keys that take true, false or 'auto' (a saved true/false keeps loading now that the default is 'auto').
BOOL_OR_AUTO: tuple[str, ...] = ("agent.compile",)

# Pairs of keys that must be ordered: (smaller, larger, strictly smaller?).
ORDERED: tuple[tuple[str, str, bool], ...] = (
    ("agent.min_std", "agent.max_std", False),
    ("agent.retnorm_lo", "agent.retnorm_hi", True),
    ("agent.batch_length", "replay.capacity", False),  # the replay must hold one training sequence
)


def is_numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_range(key: str, value: Any, source: str) -> None:
    """Raise a one-line UsageError if `value` is outside the RANGES entry of `key` (keys without one pass)."""
    allowed = RANGES.get(key)
    if allowed is None or not is_numeric(value):
        return
    if not math.isfinite(value) or value not in allowed:
        raise UsageError(
            f"config key '{key}' must be {allowed.describe(isinstance(value, int))} but {source} gives {value!r}"
        )


def _check_ordered(cfg: DictConfig) -> None:
    flat = flat_keys(cfg)
    for small, large, strict in ORDERED:
        a, b = flat[small], flat[large]
        if a > b or (strict and a == b):
            raise UsageError(
                f"config key '{small}' ({a!r}) must be {'below' if strict else 'at most'} '{large}' ({b!r}); "
                f"change one of them"
            )


def check_device(key: str, name: str, allow_auto: bool = False) -> None:
    """Refuse a device this machine does not have, naming the ones it has (one line, before anything is written)."""
    import torch

    if allow_auto and name == "auto":
        return
    available = ["cpu"]
    if torch.cuda.is_available():
        available += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        available.append("mps")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"{key} '{name}' is not a device name; available here: {', '.join(available)}") from None
    if device.type == "cpu":
        return
    full = device.type if device.type == "mps" else f"{device.type}:{device.index or 0}"
    if full not in available:
        why = " (this torch has no CUDA)" if device.type == "cuda" and not torch.cuda.is_available() else ""
        raise UsageError(
            f"{key} is '{name}' but this machine has no such device{why}; available here: {', '.join(available)}"
        )


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


def suggest_key(key: str, known: Iterable[str]) -> str:
    """'; did you mean ...?' for an unknown dotted key: the same leaf name in another section first (agent.threads ->
    threads, agent.steps -> run.steps), then keys of the same section whose leaf contains it (agent.lr ->
    agent.model_lr, agent.actor_lr, agent.critic_lr), then the closest full path or leaf name."""
    known = list(known)
    section, _, leaf = key.rpartition(".")

    def leaf_of(k: str) -> str:
        return k.rpartition(".")[2]

    if key in ("config", "block", "blocks"):
        return "; did you mean --configs NAME ... (config blocks) or --config-file FILE (a YAML file)?"
    found = [k for k in known if leaf_of(k) == leaf and k != key]
    if section:
        found += [k for k in known if k.rpartition(".")[0] == section and leaf in leaf_of(k).split("_")]
    if not found:
        found = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    if not found:
        leaves = difflib.get_close_matches(leaf, sorted({leaf_of(k) for k in known}), n=1, cutoff=0.75)
        found = sorted((k for k in known if leaves and leaf_of(k) == leaves[0]), key=lambda k: k.count("."))[:1]
    if not found:
        return ""
    shown = [f"'{k}'" for k in found[:4]]
    return "; did you mean " + (shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]) + "?"


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    """Return `value` converted to the default's type, or raise a UsageError naming key, source and expected type."""
    if default is None or value is None:
        return value

    def wrong(expected: str) -> UsageError:
        return UsageError(
            f"config key '{key}' expects {expected} but {source} gives {value!r} ({type(value).__name__}); "
            f"the default is {default!r}"
        )

    if key in BOOL_OR_AUTO:
        if isinstance(value, bool) or value == "auto":
            return value
        raise wrong("true, false or auto")
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
                f"unknown config key '{key}' ({source}){suggest_key(key, known)} "
                "(every key is listed in lamp/configs.yaml)"
            )
        value = _coerce(key, value, known[key], source)
        check_range(key, value, source)
        OmegaConf.update(cfg, key, value, merge=False)


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
    except UnicodeDecodeError as e:
        raise UsageError(
            f"{what} '{p}' is not UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start}); save it as UTF-8"
        ) from None
    except OSError as e:
        reason = e.strerror or e.__class__.__name__
        raise UsageError(f"{what} '{p}' cannot be read ({reason}); check its permissions") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{what} '{p}' must be {shape}")
    return data


def parse_flags(args: Sequence[str]) -> dict[str, Any]:
    """Turn ['--agent.model_lr', '3e-4', '--seed=2'] into {'agent.model_lr': 3e-4, 'seed': 2}; values are YAML."""
    dotlist: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) < 3:
            raise UsageError(f"unexpected argument '{token}'; config overrides look like --agent.model_lr 3e-4")
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


# What lamp did before a key existed, where today's default differs: a saved config (a resumed run, a fine-tuning
# source) without the key ran with this value, and must keep it (agent.twohot is also part of the architecture check,
# lamp.agent.agent.ARCH_BEFORE_KEY). Other keys added since take today's default.
VALUE_BEFORE_KEY: dict[str, Any] = {"agent.twohot": "symlog"}


def with_values_before_keys(saved_flat: dict[str, Any]) -> dict[str, Any]:
    """A saved config's flat keys, with VALUE_BEFORE_KEY's value for each listed key it lacks."""
    return {**{k: v for k, v in VALUE_BEFORE_KEY.items() if k not in saved_flat}, **saved_flat}


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
        _apply(cfg, with_values_before_keys(flat_keys(tree)), "the saved run config")
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
    _check_ordered(cfg)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def is_runtime_key(key: str) -> bool:
    """True for a key of RUNTIME_KEYS or under one of its sections (a resume may change it)."""
    return any(key == name or key.startswith(name + ".") for name in RUNTIME_KEYS)


def explicit_keys(
    config_file: str | Path | None = None, flags: Sequence[str] = (), overrides: dict[str, Any] | None = None
) -> set[str]:
    """The keys this command line sets itself (flags, --config-file, the CLI's own options): the only ones a resume
    takes from the command line rather than from the run's saved config."""
    keys = set(parse_flags(flags)) | set(overrides or {})
    if config_file is not None:
        keys |= set(flat_keys(read_yaml_mapping(config_file)))
    return keys


def _show(value: Any) -> str:
    """A value as a log line shows it: 0.997, true, [critic_hidden], cpu, ''."""
    if isinstance(value, str):
        return value if value else "''"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _same(key: str, a: Any, b: Any) -> bool:
    """Equal config values; the fine-tuning source also counts as the same when both spellings name one folder."""
    if key == "finetune.source" and a and b and isinstance(a, str) and isinstance(b, str):
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    return a == b


def resume_config(
    saved: DictConfig | dict[str, Any], requested: DictConfig, explicit: Iterable[str]
) -> tuple[DictConfig, list[str]]:
    """The config of a resumed run: its saved config.yaml, then the keys this command line sets itself (`explicit`,
    with their values from `requested`, which is the command resolved from today's defaults and blocks).

    A run must not switch recipe half-way because lamp/configs.yaml changed or a different block was named, so named
    blocks and today's defaults do not override saved values; keys the saved config lacks (added since) take today's
    default. An explicit value that changes a learning key (any key outside RUNTIME_KEYS) is refused in one line.
    Returns the read-only config and the lines to log (keys filled in, saved values kept over today's)."""
    logdir = requested.logdir
    wanted = flat_keys(OmegaConf.to_container(requested))
    tree = OmegaConf.to_container(saved) if isinstance(saved, DictConfig) else saved
    saved_flat = flat_keys(tree)
    known = flat_keys(_blocks()["defaults"])
    cfg = defaults()
    before = {k: v for k, v in VALUE_BEFORE_KEY.items() if k not in saved_flat and k in known}
    _apply(cfg, {k: v for k, v in {**before, **saved_flat}.items() if k in known}, f"the saved config of {logdir}")
    base = flat_keys(OmegaConf.to_container(cfg))  # saved values, coerced; today's defaults for keys added since
    explicit = {k for k in explicit if k in wanted}  # leaves only (a file may hold an empty section)
    changed = sorted(k for k in explicit if not is_runtime_key(k) and not _same(k, base[k], wanted[k]))
    if changed:
        key, more = changed[0], f" (it also changes {', '.join(changed[1:])})" if len(changed) > 1 else ""
        raise UsageError(
            f"the run in {logdir} has {key} {_show(base[key])} saved and this command gives "
            f"{_show(wanted[key])}{more}; a resume keeps the keys that change what the run learns: resume without "
            "it, or use a new --logdir"
        )
    _apply(cfg, {k: wanted[k] for k in explicit}, "the command line")
    _check_ordered(cfg)
    OmegaConf.set_readonly(cfg, True)
    notes: list[str] = []
    added = [k for k in known if k not in saved_flat and k not in explicit and k not in before]
    kept_before = [k for k in before if k not in explicit]
    if kept_before:
        said = ", ".join(f"{k} {_show(base[k])}" for k in kept_before)
        notes.append(
            f"resume: {logdir}/config.yaml predates keys whose default changed; it keeps what lamp did before: {said}"
        )
    if added:
        said = ", ".join(f"{k} {_show(base[k])}" for k in added)
        notes.append(f"resume: {logdir}/config.yaml predates keys added since; they take today's defaults: {said}")
    dropped = sorted(k for k in saved_flat if k not in known)
    if dropped:
        notes.append(f"resume: {logdir}/config.yaml has keys this lamp no longer knows, ignored: {', '.join(dropped)}")
    kept = [k for k in saved_flat if k in known and k not in explicit and not _same(k, base[k], wanted[k])]
    if kept:
        said = ", ".join(f"{k} {_show(base[k])} (today's config gives {_show(wanted[k])})" for k in kept)
        notes.append(f"resume: keeping the run's saved {said}")
    return cfg, notes


def run_config(
    configs: Sequence[str],
    config_file: Path | None,
    flags: Sequence[str],
    overrides: dict[str, Any],
    base: DictConfig | dict[str, Any] | None = None,
    mode: str | None = None,
) -> tuple[DictConfig, list[str]]:
    """The config of a training command: today's defaults and blocks for a new run; for a LOGDIR that already holds a
    run, its saved config plus what this command line sets itself (lamp.config.resume_config), so a resume keeps the
    recipe it started with. Also returns the lines saying what the resume kept or filled in. A LOGDIR's run keeps its
    identity: `mode` (pretrain | finetune) must be its mode, and its task and source are learning keys."""
    from lamp.rundir import holds_run

    cfg = build_config(configs, config_file, flags, overrides, base=base)
    logdir = Path(cfg.logdir).expanduser()
    if not cfg.logdir or not holds_run(logdir):
        return cfg, []
    saved = load_saved_config(logdir)
    task = str(OmegaConf.select(saved, "env.task", default="pretrain"))
    if mode is not None and (task == "pretrain") != (mode == "pretrain"):
        held = "a pretraining run" if task == "pretrain" else f"a fine-tuning run (task {task})"
        raise UsageError(f"{logdir} holds {held}; `lamp {mode}` cannot continue it: use a new --logdir")
    return resume_config(saved, cfg, explicit_keys(config_file, flags, overrides))


def changed_from_defaults(cfg: DictConfig) -> dict[str, str]:
    """{key: value as a log line shows it} for the keys whose value differs from lamp/configs.yaml's defaults."""
    known = flat_keys(_blocks()["defaults"])
    values = flat_keys(OmegaConf.to_container(cfg))
    return {k: _show(v) for k, v in values.items() if k in known and not _same(k, known[k], v)}


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
