"""RLBench back-end: LAMP's five fine-tuning tasks and its pretraining task in CoppeliaSim, behind lamp's env contract.

The same gymnasium interface as the embedded Meta-World back-end: action Box(-1, 1, (4,)) = end-effector xyz delta
(x `action_scale` metres) + gripper (open if > 0); observation `image` (front RGB), optional `wrist`, `state`
(10-d: gripper open, tip pose xyz+quat, gripper joint positions); info `success`, `noun`, `task`, `task_reward`.

RLBench and PyRep are imported lazily (inside `RLBenchEnv.__init__`), so this module imports on machines without
CoppeliaSim. CoppeliaSim allows one simulator per process: build this env inside a worker process (the factory
`make(task, **options)` is picklable by name), never two in one process. Facts behind each choice are cited from
the project's RLBench reference (rlbench.md) by section.
"""

from __future__ import annotations

import contextlib
import inspect
import random
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from envs.common import (
    SCORER_KEY,
    action_space,
    area_downsample,
    check_action,
    check_render_size,
    observation_space,
)
from envs.rlbench_textures import SceneTextures, TextureDraw
from lamp.errors import UsageError

STATE_DIM = 10  # gripper_open (1) + gripper_pose (7) + gripper_joint_positions (2), as LAMP (rlbench.md 1.4)
INSTALL_HINT = (
    "the RLBench back-end needs CoppeliaSim 4.1 + PyRep + RLBench, which are not on PyPI: build the Dockerfile "
    "(docker build -t lamp-rlbench .) and run inside it, see README 'RLBench in a container'"
)


@dataclass(frozen=True)
class TaskSpec:
    """An RLBench task module/class, and the main object's class that fills {noun} in prompts."""

    module: str
    cls: str
    noun: str


TASKS = {
    "pick_up_cup": TaskSpec("pick_up_cup", "PickUpCup", "cup"),
    "take_lid_off_saucepan": TaskSpec("take_lid_off_saucepan", "TakeLidOffSaucepan", "lid"),
    "push_button": TaskSpec("push_button", "PushButton", "button"),
    "close_microwave": TaskSpec("close_microwave", "CloseMicrowave", "microwave"),
    "turn_tap": TaskSpec("turn_tap", "TurnTap", "tap"),
}
PRETRAIN = "pretrain"
# LAMP's pretraining curriculum (lamp README): ShapeNet classes, 3 objects per episode (rlbench.md 2.3).
PRETRAIN_OBJECTS = ("bag", "bowl", "cap", "earphone", "faucet", "jar", "knife", "laptop", "mug", "pot", "telephone")


class RLBenchResetError(RuntimeError):
    """RLBench could not place the task after the allowed number of reset attempts."""


class RLBenchPretrainError(RuntimeError):
    """The pretraining task does not hold rlbench.objects/num_objects after a reset (pretraining would silently run
    with the fork's default mug and no distractors)."""


PRETRAIN_HOOKS = ("reset_samplers", "set_num_objects")
# The fork's attributes that reset_samplers() replaces; a fresh object there means init_task() ran again.
PRETRAIN_SAMPLERS = ("main_shapenet_sampler", "extra_shapenet_sampler")


def _import_rlbench() -> dict[str, Any]:
    """The RLBench/PyRep names the adapter uses, by their real import paths; a clear UsageError when absent."""
    try:
        from pyrep.const import RenderMode
        from pyrep.errors import ConfigurationPathError, IKError
        from rlbench.action_modes.action_mode import MoveArmThenGripper
        from rlbench.action_modes.arm_action_modes import EndEffectorPoseViaPlanning
        from rlbench.action_modes.gripper_action_modes import Discrete
        from rlbench.backend.exceptions import InvalidActionError, TaskEnvironmentError
        from rlbench.backend.task import Task
        from rlbench.environment import Environment
        from rlbench.observation_config import CameraConfig, ObservationConfig
    except ImportError as err:
        raise UsageError(f"{INSTALL_HINT} (import failed: {err})") from err
    return {
        "RenderMode": RenderMode,
        "MoveArmThenGripper": MoveArmThenGripper,
        "EndEffectorPoseViaPlanning": EndEffectorPoseViaPlanning,
        "Discrete": Discrete,
        "Environment": Environment,
        "ObservationConfig": ObservationConfig,
        "CameraConfig": CameraConfig,
        "Task": Task,
        "TaskEnvironmentError": TaskEnvironmentError,
        "action_errors": (InvalidActionError, IKError, ConfigurationPathError),
    }


def _task_class(module: str, cls: str, option: str) -> type:
    import importlib

    try:
        return getattr(importlib.import_module(f"rlbench.tasks.{module}"), cls)
    except (ImportError, AttributeError) as err:
        raise UsageError(
            f"{option} '{module}' is not in the installed RLBench ({err.__class__.__name__}); "
            "the pretraining task needs the LAMP fork (Dockerfile build arg RLBENCH_REPO)"
        ) from err


def has_shaped_reward(task_cls: type, base_task: type) -> bool:
    """Feature test, not a version string: the task class overrides Task.reward (the LAMP fork's five tasks do)."""
    return getattr(task_cls, "reward", None) is not getattr(base_task, "reward", None)


def observation_config(rl: dict[str, Any], size: int, wrist: bool) -> Any:
    """Only front (and wrist) RGB and the three low-dim fields: RLBench's defaults render 5 cameras x 4 channels."""
    cfg = rl["ObservationConfig"]()
    cfg.set_all(False)
    for name, on in (("front_camera", True), ("wrist_camera", wrist)):
        cam = rl["CameraConfig"](image_size=(size, size), render_mode=rl["RenderMode"].OPENGL)
        cam.set_all(False)
        cam.rgb = on
        setattr(cfg, name, cam)
    cfg.gripper_open = cfg.gripper_pose = cfg.gripper_joint_positions = True
    return cfg


class RLBenchEnv(gym.Env):
    """One RLBench task in its own CoppeliaSim (one per process); see the module docstring for the contract."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        task: str,
        size: int = 64,
        wrist: bool = False,
        episode_length: int = 150,
        action_scale: float = 0.03,
        reward: str = "shaped",
        textures: dict | None = None,
        variation: int = 0,
        reset_retries: int = 5,
        headless: bool = True,
        pretrain_task: str = "pick_shapenet_objects",
        objects: list[str] | tuple[str, ...] = PRETRAIN_OBJECTS,
        num_objects: int = 3,
        seed: int | None = None,
        render_mode: str | None = "rgb_array",
        camera: str = "front",
        pool: str | None = None,
        decimate: float | None = None,
        render_size: int = 0,
        score_view: bool = False,
    ) -> None:
        """Options mirror the `env:` config section (plus the `rlbench:` section); `pool` and `decimate` are
        Meta-World-only and ignored here, so one `env:` section drives either back-end."""
        del pool, decimate
        textures = dict(textures or {})
        if camera != "front":
            raise UsageError(f"env.camera '{camera}' is not available with RLBench; use front (and env.wrist: true)")
        if task != PRETRAIN and task not in TASKS:
            raise UsageError(f"env.task '{task}' is not an RLBench task here; valid: {', '.join([PRETRAIN, *TASKS])}")
        if reward not in ("shaped", "sparse"):
            raise UsageError(f"env.reward '{reward}' is unknown; use 'shaped' or 'sparse'")
        if not 8 <= size <= 512:
            raise UsageError(f"env.size {size} is out of range; use 64 (default) or 128")
        try:  # cameras render at the scorer's size (LAMP: 128) and are area-downsampled for the agent
            self.render_size = check_render_size(size, render_size)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self.score_view = bool(score_view)
        if episode_length < 1:
            raise UsageError(f"env.episode_length must be at least 1, got {episode_length}")
        if not 0.0 < action_scale <= 0.1:
            raise UsageError(f"env.action_scale {action_scale} is out of range; LAMP uses 0.03 (3 cm per step)")
        if reset_retries < 0:
            raise UsageError(f"rlbench.reset_retries must be >= 0, got {reset_retries}")
        if num_objects < 1 or not objects:
            raise UsageError("rlbench.num_objects must be >= 1 and rlbench.objects non-empty")
        p_default = textures.get("p_default", 0.2)
        if not isinstance(p_default, (int, float)) or not 0.0 <= float(p_default) <= 1.0:
            raise UsageError(f"textures.p_default must be within [0, 1], got {p_default}")
        self.task = task
        self.size, self.wrist = size, wrist
        self.episode_length, self.action_scale = episode_length, action_scale
        self.reset_retries = reset_retries
        self.variation = variation
        self.render_mode = render_mode
        # Downstream tasks keep the default look (LAMP fine-tunes with --randomize off) unless told otherwise.
        randomize = textures.get("randomize", "auto")
        if randomize not in ("auto", "always", "never", True, False):
            raise UsageError(f"textures.randomize '{randomize}' is unknown; use auto, always or never")
        randomize = task == PRETRAIN if randomize == "auto" else randomize in ("always", True)
        self.scene_textures = (
            SceneTextures(textures.get("dir"), float(p_default), int(textures.get("size", 256))) if randomize else None
        )

        self.action_space = action_space()
        self.observation_space = observation_space(size, wrist, STATE_DIM, self.render_size if score_view else 0)
        self._rng = np.random.default_rng(seed)

        self._rl = rl = _import_rlbench()
        spec = TASKS.get(task) or TaskSpec(pretrain_task, "".join(w.title() for w in pretrain_task.split("_")), "")
        task_cls = _task_class(spec.module, spec.cls, "rlbench.pretrain_task" if task == PRETRAIN else "env.task")
        if task == PRETRAIN and not all(callable(getattr(task_cls, hook, None)) for hook in PRETRAIN_HOOKS):
            raise UsageError(
                f"rlbench.pretrain_task '{pretrain_task}' has no {' / '.join(PRETRAIN_HOOKS)} hooks, so "
                "rlbench.objects and rlbench.num_objects cannot be applied; use the LAMP fork's pick_shapenet_objects"
            )
        self._objects, self._num_objects = list(objects), num_objects
        self._pretrain_samplers: tuple | None = None  # what reset_samplers() installed; None = not applied yet
        self._noun = spec.noun
        self.shaped = reward == "shaped" and has_shaped_reward(task_cls, rl["Task"])
        if reward == "shaped" and not self.shaped:
            import warnings

            warnings.warn(f"RLBench task {spec.module} has no shaped reward() here: using sparse success", stacklevel=2)
        # Delta mode, default (world) frame: both flavours take it positionally and default to the world frame, so we
        # never pass the LAMP fork's string frame to master, which would silently treat it as EE (rlbench.md 1.9).
        arm = rl["EndEffectorPoseViaPlanning"](False)
        self._action_mode = rl["MoveArmThenGripper"](arm, rl["Discrete"]())
        kwargs: dict[str, Any] = {}
        if "shaped_rewards" in inspect.signature(rl["Environment"].__init__).parameters:
            kwargs["shaped_rewards"] = self.shaped
        self._env = rl["Environment"](
            self._action_mode, obs_config=observation_config(rl, self.render_size, wrist), headless=headless, **kwargs
        )
        try:
            self._env.launch()
            self._task_env = self._env.get_task(task_cls)
            if task != PRETRAIN:
                self._task_env.set_variation(variation)
        except BaseException:
            with contextlib.suppress(Exception):  # a launch that failed half-way may leave nothing to shut down
                self._env.shutdown()
            raise
        if int(np.prod(self._env.action_shape)) != 8:  # 7-d EE pose + 1 gripper (rlbench.md 1.5)
            raise RuntimeError(f"unexpected RLBench action shape {self._env.action_shape}; expected (8,)")
        self._closed = False
        self._last_obs: dict[str, np.ndarray] | None = None
        self._tip_z0 = 0.0
        self._tip_z = 0.0
        self._steps = 0
        self._last_task_reward = 0.0
        self._success = False
        self._episode_success = False
        self.failed_actions = 0  # this episode: planning/IK failures that kept the previous observation
        self.failed_actions_total = 0
        self.reset_failures_total = 0
        self.last_draw = TextureDraw(None)
        self.last_descriptions: list[str] = []

    # ---------------------------------------------------------------------------------------------------------------
    def _apply_pretrain(self) -> None:
        """Give the LAMP fork's ShapeNet task our object classes and count, through its hooks (rlbench.md 2.3).

        Only after a reset: RLBench runs the task's init_task() lazily at the first reset (and again after a reload),
        and the fork's init_task() puts its default samplers and one object back, overwriting anything set earlier.
        """
        inner = self._task_env._task
        inner.reset_samplers(self._objects, self._objects, -1, -1)
        inner.set_num_objects(self._num_objects)
        self._pretrain_samplers = tuple(getattr(inner, name, None) for name in PRETRAIN_SAMPLERS)

    def _pretrain_problem(self) -> str | None:
        """Why the current pretraining episode does not follow rlbench.objects/num_objects; None when it does."""
        if self._pretrain_samplers is None:
            return "the settings were not applied yet"
        inner = self._task_env._task
        for name, ours in zip(PRETRAIN_SAMPLERS, self._pretrain_samplers, strict=True):
            if getattr(inner, name, None) is not ours:
                return f"its {name} was replaced (init_task ran again)"
        if getattr(inner, "num_objects", self._num_objects) != self._num_objects:
            return f"its num_objects is {inner.num_objects}, not rlbench.num_objects={self._num_objects}"
        meta = [str(m) for m in getattr(inner, "bin_objects_meta", None) or []]
        if len(meta) != self._num_objects:
            return f"the episode has {len(meta)} objects, not rlbench.num_objects={self._num_objects}"
        foreign = sorted(set(meta) - set(self._objects))
        if foreign:
            return f"the episode has {', '.join(foreign)}, not in rlbench.objects={','.join(self._objects)}"
        return None

    @property
    def noun(self) -> str:
        """The main object's class: fixed per downstream task; the ShapeNet class of object 0 in pretraining."""
        if self._noun:
            return self._noun
        meta = getattr(getattr(self._task_env, "_task", None), "bin_objects_meta", None)
        return str(meta[0]) if meta else "object"

    def _observe(self, obs: Any) -> dict[str, np.ndarray]:
        front = np.asarray(obs.front_rgb).astype(np.uint8, copy=False)
        expected = (self.render_size, self.render_size, 3)
        if front.shape != expected:
            raise RuntimeError(f"RLBench front_rgb has shape {front.shape}, expected {expected}")
        out = {"image": area_downsample(front, self.size)}
        if self.wrist:
            out["wrist"] = area_downsample(np.asarray(obs.wrist_rgb).astype(np.uint8, copy=False), self.size)
        state = np.concatenate([[obs.gripper_open], obs.gripper_pose, obs.gripper_joint_positions])
        out["state"] = state.astype(np.float32)
        if self.score_view:
            out[SCORER_KEY] = front
        self._tip_z = float(obs.gripper_pose[2])
        return out

    def _info(self, invalid: bool = False) -> dict[str, Any]:
        return {
            "success": self._success,
            "episode_success": self._episode_success,
            "noun": self.noun,
            "task": self.task,
            "task_reward": self._last_task_reward,
            "failed_actions": self.failed_actions,
            "invalid_action": invalid,
            "textures": self.last_draw.summary(),
        }

    def to_rlbench_action(self, action: Any) -> np.ndarray:
        """4-d policy action -> RLBench's 8-d [dx, dy, dz, identity quat (xyzw), gripper] (rlbench.md 1.5).

        dz is clipped so the tip never rises above its height at reset (LAMP zeroes it; clipping keeps the part of
        the move that stays below). The gripper is 1.0 (open) when a[3] > 0, else 0.0 (Discrete opens above 0.5).
        """
        a = check_action(action).astype(np.float64)
        dx, dy, dz = self.action_scale * a[:3]
        dz = min(dz, max(self._tip_z0 - self._tip_z, 0.0))
        gripper = 1.0 if a[3] > 0 else 0.0
        return np.array([dx, dy, dz, 0.0, 0.0, 0.0, 1.0, gripper], dtype=np.float64)

    # ---------------------------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """New episode: redraw textures, reset the task (retrying placement failures), return the first observation.

        Pretraining: the object settings are (re)applied after a reset that ran the task's init_task(), and that
        reset is repeated, so every episode returned follows rlbench.objects/num_objects (checked; else an error).
        """
        super().reset(seed=seed)
        if self._closed:
            raise RuntimeError("reset() on a closed RLBenchEnv")
        if seed is not None:
            # RLBench places objects with the global np.random (and `random` for ShapeNet classes); one simulator
            # per process makes seeding them here safe.
            self._rng = np.random.default_rng(seed)
            np.random.seed(seed)
            random.seed(seed)
        if self.scene_textures is not None:
            self.last_draw = self.scene_textures.draw(self._rng)
            # Scene.pyrep is public (only the route to the Scene, _scene, is private); Environment._pyrep is not.
            self.scene_textures.apply(self._task_env._scene.pyrep, self.last_draw)
        if self.variation < 0:
            self._task_env.sample_variation()
        descriptions, obs, attempts = self._reset_task()
        if self.task == PRETRAIN and self._pretrain_problem() is not None:
            # First reset (or init_task ran again): that episode used the fork's defaults. Apply, place it again.
            self._apply_pretrain()
            descriptions, obs, more = self._reset_task()
            attempts += more
            problem = self._pretrain_problem()
            if problem is not None:
                raise RLBenchPretrainError(
                    f"RLBench task '{type(self._task_env._task).__name__}' does not keep rlbench.objects/"
                    f"rlbench.num_objects={self._num_objects} after reset: {problem}"
                )
        self._steps = 0
        self.failed_actions = 0
        self._success = self._episode_success = False
        self._last_task_reward = 0.0
        self.last_descriptions = list(descriptions)
        self._last_obs = self._observe(obs)
        self._tip_z0 = self._tip_z
        info = self._info()
        info["descriptions"] = self.last_descriptions
        info["reset_attempts"] = attempts
        return self._last_obs, info

    def _reset_task(self) -> tuple[list[str], Any, int]:
        """TaskEnvironment.reset(), retrying placement failures; returns (descriptions, observation, attempts)."""
        errors = []
        for _attempt in range(self.reset_retries + 1):
            try:
                descriptions, obs = self._task_env.reset()
                return descriptions, obs, len(errors) + 1
            except self._rl["TaskEnvironmentError"] as err:
                errors.append(err)
                self.reset_failures_total += 1
        raise RLBenchResetError(
            f"RLBench could not place task '{self.task}' in {len(errors)} resets "
            f"(rlbench.reset_retries={self.reset_retries}); last error: {errors[-1]}"
        )

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        if self._last_obs is None:
            raise RuntimeError("call reset() before step() on an RLBenchEnv")
        rl_action = self.to_rlbench_action(action)
        invalid = False
        try:
            obs, reward, terminate = self._task_env.step(rl_action)
            self._last_obs = self._observe(obs)
            self._success = self._current_success(terminate)
            self._last_task_reward = float(reward) if self.shaped else float(self._success)
        except self._rl["action_errors"]:
            # Planning/IK failed: the arm did not move. Keep the previous observation and reward (as LAMP does).
            invalid = True
            self.failed_actions += 1
            self.failed_actions_total += 1
        self._episode_success = self._episode_success or self._success
        self._steps += 1
        truncated = self._steps >= self.episode_length
        info = self._info(invalid)
        return self._last_obs, self._last_task_reward, False, truncated, info

    def _current_success(self, terminate: Any) -> bool:
        """RLBench returns `terminate` (success OR all fail conditions, a numpy.bool_); ask the task for success."""
        inner = getattr(self._task_env, "_task", None)
        if inner is not None and hasattr(inner, "success"):
            return bool(inner.success()[0])
        return bool(terminate)

    def render(self) -> np.ndarray | None:
        return None if self._last_obs is None else self._last_obs["image"]

    def close(self) -> None:
        """Shut CoppeliaSim down exactly once (a second launch in this process needs it gone)."""
        if not getattr(self, "_closed", True):
            self._closed = True
            self._env.shutdown()


def make(task: str, **options: Any) -> RLBenchEnv:
    """Registry entry point: `envs.make_env("rlbench/<task>", **options)`; call it inside the worker process."""
    return RLBenchEnv(task, **options)
