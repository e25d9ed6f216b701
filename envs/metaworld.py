"""Meta-World (MuJoCo) back-end: the five LAMP downstream tasks and domain-randomised pretraining scenes.

Each Meta-World task is compiled once through MjSpec with lamp's additions (three room walls, texture slots that the
texture bank writes into, a front camera) and rendered with our own `mujoco.Renderer` at CPU-friendly settings
(no MSAA, shadows or reflections; see shared/reference/sim.md). Everything random (scene, object layout, textures)
comes from one `np.random.Generator` that `reset(seed=...)` re-seeds, never from the global RNG.
"""

from __future__ import annotations

import atexit
import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from envs import gl
from envs.common import (
    SCORER_KEY,
    action_space,
    area_downsample,
    check_action,
    check_render_size,
    observation_space,
)
from envs.textures import TextureBank
from lamp.errors import UsageError

GL_BACKEND = gl.select_backend()  # must run before mujoco is imported

import mujoco  # noqa: E402
from metaworld.env_dict import ALL_V3_ENVIRONMENTS  # noqa: E402


@dataclass(frozen=True)
class Task:
    """A lamp task: which Meta-World scene it runs, the main object's class (prompt noun) and its instruction."""

    metaworld: str
    noun: str
    instruction: str


# The paper's five RLBench tasks, each on the closest Meta-World scene (reasons in the README section).
DOWNSTREAM: dict[str, Task] = {
    "push_button": Task("button-press-topdown-v3", "button", "push the button"),
    "turn_tap": Task("faucet-open-v3", "faucet", "turn the tap"),
    "close_microwave": Task("door-close-v3", "door", "close the microwave door"),
    "pick_up_cup": Task("pick-place-v3", "mug", "pick up the cup"),
    "take_lid_off_saucepan": Task("disassemble-v3", "lid", "take the lid off the saucepan"),
}

# Every Meta-World task that shares an object model with a downstream task (button box, faucet, safe door,
# pick-place puck with goal, nut and peg) is excluded from pretraining, so fine-tuning measures transfer.
EXCLUDED_FROM_PRETRAINING = frozenset(
    {
        "button-press-topdown-v3",
        "button-press-topdown-wall-v3",
        "button-press-v3",
        "button-press-wall-v3",
        "faucet-open-v3",
        "faucet-close-v3",
        "door-close-v3",
        "door-open-v3",
        "door-lock-v3",
        "door-unlock-v3",
        "pick-place-v3",
        "pick-place-wall-v3",
        "assembly-v3",
        "disassemble-v3",
    }
)
# `pool: strict` also drops scenes whose *skill* is a near-duplicate of a downstream one (press, rotate, close, lift).
SKILL_DUPLICATES = frozenset(
    {"coffee-button-v3", "dial-turn-v3", "box-close-v3", "drawer-close-v3", "window-close-v3", "pick-out-of-hole-v3"}
)
PRETRAIN_NOUNS: dict[str, str] = {
    "basketball-v3": "ball",
    "bin-picking-v3": "block",
    "box-close-v3": "box",
    "coffee-button-v3": "coffee machine",
    "coffee-pull-v3": "mug",
    "coffee-push-v3": "mug",
    "dial-turn-v3": "dial",
    "hand-insert-v3": "puck",
    "drawer-close-v3": "drawer",
    "drawer-open-v3": "drawer",
    "hammer-v3": "hammer",
    "handle-press-side-v3": "handle",
    "handle-press-v3": "handle",
    "handle-pull-side-v3": "handle",
    "handle-pull-v3": "handle",
    "lever-pull-v3": "lever",
    "pick-out-of-hole-v3": "puck",
    "plate-slide-v3": "plate",
    "plate-slide-side-v3": "plate",
    "plate-slide-back-v3": "plate",
    "plate-slide-back-side-v3": "plate",
    "peg-insert-side-v3": "peg",
    "peg-unplug-side-v3": "peg",
    "soccer-v3": "ball",
    "stick-push-v3": "stick",
    "stick-pull-v3": "stick",
    "push-v3": "puck",
    "push-wall-v3": "puck",
    "push-back-v3": "puck",
    "reach-v3": "puck",
    "reach-wall-v3": "puck",
    "shelf-place-v3": "block",
    "sweep-into-v3": "block",
    "sweep-v3": "block",
    "window-open-v3": "window",
    "window-close-v3": "window",
}


def pretrain_pool(pool: str = "disjoint") -> list[str]:
    """Meta-World scenes used for pretraining: all 50 minus the downstream objects (and skill duplicates if strict)."""
    if pool not in ("disjoint", "strict"):
        raise UsageError(f"metaworld pool '{pool}' is unknown; use 'disjoint' or 'strict'")
    names = [n for n in sorted(ALL_V3_ENVIRONMENTS) if n not in EXCLUDED_FROM_PRETRAINING]
    return [n for n in names if pool == "disjoint" or n not in SKILL_DUPLICATES]


# Cameras: "front" is a free camera that frames arm and objects (sim.md, frontcam candidates, middle row);
# the rest are Meta-World's own. The corner cameras are mounted upside down, so their images are flipped.
FRONT = {"lookat": (0.0, 0.7, 0.1), "distance": 1.0, "azimuth": 145.0, "elevation": -35.0}
METAWORLD_CAMERAS = ("topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV")
CAMERAS = ("front", *METAWORLD_CAMERAS)
WRIST_CAMERA = "gripperPOV"
SURFACES = ("table", "floor", "wall_back", "wall_left", "wall_right")
WALL_GROUP = 5  # geom group of the added walls; hidden when the default look is kept
WALLS = {  # name: (pos, quat, half-size) -- planes whose normal (local z) faces the table, behind every object
    "wall_back": ((0.0, 2.2, 0.5), (0.7071068, 0.7071068, 0.0, 0.0), (3.0, 2.0)),
    "wall_left": ((-2.0, 0.6, 0.5), (0.7071068, 0.0, 0.7071068, 0.0), (2.0, 3.0)),
    "wall_right": ((2.0, 0.6, 0.5), (0.7071068, 0.0, -0.7071068, 0.0), (2.0, 3.0)),
}
_ATEXIT_REGISTERED = False
PICK_UP_HEIGHT = 0.12  # pick_up_cup: goal 12 cm straight above the cup's start, so success means "lifted"


def _build_spec(fullpath: str, texture_size: int) -> mujoco.MjSpec:
    """Meta-World's XML plus walls, one texture slot and material per randomised surface."""
    spec = mujoco.MjSpec.from_file(fullpath)
    for surface in SURFACES:
        spec.add_texture(
            name=f"lamp_tex_{surface}",
            type=mujoco.mjtTexture.mjTEXTURE_2D,
            builtin=mujoco.mjtBuiltin.mjBUILTIN_FLAT,
            width=texture_size,
            height=texture_size,
            nchannel=3,
            rgb1=[0.5, 0.5, 0.5],
            rgb2=[0.5, 0.5, 0.5],
        )
        material = spec.add_material(name=f"lamp_mat_{surface}")
        material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = f"lamp_tex_{surface}"
        material.texrepeat = [2.0, 2.0] if surface == "floor" else [1.0, 1.0]
        material.specular, material.shininess = 0.1, 0.1
    for wall, (pos, quat, half) in WALLS.items():
        spec.worldbody.add_geom(
            name=f"lamp_{wall}",
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[*half, 0.01],
            pos=list(pos),
            quat=list(quat),
            contype=0,
            conaffinity=0,
            group=WALL_GROUP,
            material=f"lamp_mat_{wall}",
        )
    return spec


def _compile(fullpath: str, texture_size: int, decimate: float | None) -> mujoco.MjModel:
    """Compile a scene once per env; with `decimate`, large visual-only robot meshes are simplified for speed."""
    if decimate:
        from envs.decimate import decimate_spec

        spec = decimate_spec(lambda: _build_spec(fullpath, texture_size), decimate)
    else:
        spec = _build_spec(fullpath, texture_size)
    model = spec.compile()
    model.vis.quality.offsamples = 0  # MSAA and shadow maps dominate CPU rendering; off before the GL context
    model.vis.quality.shadowsize = 0
    return model


class _Scene:
    """One compiled Meta-World task with its renderer and texture slots (built once, reused every episode)."""

    def __init__(self, name: str, size: int, cameras: tuple[str, ...], texture_size: int, decimate: float | None):
        cls = ALL_V3_ENVIRONMENTS[name]

        def initialize_simulation(env: Any) -> tuple[mujoco.MjModel, mujoco.MjData]:
            model = _compile(env.fullpath, texture_size, decimate)
            return model, mujoco.MjData(model)

        lamp_cls = type(f"Lamp{cls.__name__}", (cls,), {"_initialize_simulation": initialize_simulation})
        self.name = name
        self.mw = lamp_cls()
        mw = self.mw
        mw._partially_observable = False  # the scripted expert needs the goal in its observation
        mw.__dict__.pop("sawyer_observation_space", None)
        mw._freeze_rand_vec = False  # fresh object layout every reset, drawn from mw.np_random (which we seed)
        mw.seeded_rand_vec = True
        mw._set_task_called = True
        mw.max_path_length = 1 << 30  # lamp truncates episodes itself
        self.model: mujoco.MjModel = mw.model
        self.data: mujoco.MjData = mw.data
        self.size = size
        self.cameras = cameras
        model = self.model
        self.slot_tex = [model.texture(f"lamp_tex_{s}").id for s in SURFACES]
        self.slot_mat = {s: model.material(f"lamp_mat_{s}").id for s in SURFACES}
        table_mat, floor_mat = model.material("table_wood").id, model.material("basic_floor").id
        self.default_matid = model.geom_matid.copy()
        self.table_geoms = np.flatnonzero(self.default_matid == table_mat)
        self.floor_geoms = np.flatnonzero(self.default_matid == floor_mat)
        self.slot_content = [-1] * len(SURFACES)
        self.option = mujoco.MjvOption()
        self.option.sitegroup[:] = 0  # goal markers are debugging aids; the agent must not see them in its pixels
        self.renderer: mujoco.Renderer | None = None
        self.free_camera = mujoco.MjvCamera()
        self.free_camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.free_camera.lookat[:] = FRONT["lookat"]
        self.free_camera.distance = FRONT["distance"]
        self.free_camera.azimuth = FRONT["azimuth"]
        self.free_camera.elevation = FRONT["elevation"]

    def _ensure_renderer(self) -> mujoco.Renderer:
        if self.renderer is None:
            try:
                self.renderer = mujoco.Renderer(self.model, self.size, self.size)
            except Exception as err:  # GL failures surface as many exception types across EGL/OSMesa
                raise gl.render_error(GL_BACKEND, err) from err
            global _ATEXIT_REGISTERED
            if not _ATEXIT_REGISTERED:
                atexit.register(_close_live_scenes)
                _ATEXIT_REGISTERED = True
            self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        return self.renderer

    def apply_textures(self, images: list[np.ndarray] | None, indices: list[int] | None) -> None:
        """Put one bank image on each surface (uploaded only if it changed), or restore the default look (None)."""
        model = self.model
        if images is None or indices is None:
            model.geom_matid[:] = self.default_matid
            self.option.geomgroup[WALL_GROUP] = 0
            return
        renderer = self._ensure_renderer() if self.cameras else None
        for slot, (image, index) in enumerate(zip(images, indices, strict=True)):
            if self.slot_content[slot] == index:
                continue
            tid = self.slot_tex[slot]
            adr, n = model.tex_adr[tid], image.size
            model.tex_data[adr : adr + n] = image.reshape(-1)
            if renderer is not None:
                renderer._gl_context.make_current()  # mjr_uploadTexture needs the renderer's context current
                mujoco.mjr_uploadTexture(model, renderer._mjr_context, tid)
            self.slot_content[slot] = index
        model.geom_matid[self.table_geoms] = self.slot_mat["table"]
        model.geom_matid[self.floor_geoms] = self.slot_mat["floor"]
        self.option.geomgroup[WALL_GROUP] = 1

    def render(self, camera: str) -> np.ndarray:
        renderer = self._ensure_renderer()
        cam: Any = self.free_camera if camera == "front" else camera
        renderer.update_scene(self.data, camera=cam, scene_option=self.option)
        image = renderer.render()
        if camera.startswith("corner"):
            image = np.ascontiguousarray(image[::-1, ::-1])
        return image

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None


_LIVE_SCENES: weakref.WeakSet[_Scene] = weakref.WeakSet()


def _close_live_scenes() -> None:
    """Free GL contexts before interpreter teardown, which otherwise prints harmless EGL tracebacks (sim.md #7).

    Registered after the first GL context exists, so it runs before MuJoCo's own atexit eglTerminate (LIFO order).
    """
    for scene in list(_LIVE_SCENES):
        scene.close()


class MetaWorldEnv(gym.Env):
    """LAMP's observation/action contract on Meta-World: one downstream task, or a pool of pretraining scenes.

    Observation: `image` (front camera), optional `wrist` (gripperPOV), `state` = hand xyz + gripper opening.
    Info: `success`, `noun`, `task`, `task_reward` (Meta-World's shaped reward, for logging).
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        task: str,
        size: int = 64,
        camera: str = "front",
        wrist: bool = False,
        episode_length: int = 150,
        action_repeat: int = 1,
        action_scale: float = 0.01,
        reward: str = "shaped",
        textures: dict | None = None,
        pool: str = "disjoint",
        decimate: float | None = 0.15,
        max_scenes: int = 16,
        render_size: int = 0,
        score_view: bool = False,
        render: bool = True,
        seed: int | None = None,
    ) -> None:
        textures = dict(textures or {})
        if task != "pretrain" and task not in DOWNSTREAM:
            valid = ", ".join(["pretrain", *DOWNSTREAM])
            raise UsageError(f"env.task '{task}' is not a Meta-World task; valid: {valid}")
        if camera not in CAMERAS:
            raise UsageError(f"env.camera '{camera}' is unknown; valid cameras: {', '.join(CAMERAS)}")
        if reward not in ("shaped", "sparse"):
            raise UsageError(f"env.reward '{reward}' is unknown; use 'shaped' or 'sparse'")
        if size not in (32, 64, 96, 128, 256) and not (8 <= size <= 512):
            raise UsageError(f"env.size {size} is out of range; use 64 (default) or 128")
        try:
            self.render_size = check_render_size(size, render_size)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if episode_length < 1:
            raise UsageError(f"env.episode_length must be at least 1, got {episode_length}")
        if not isinstance(action_repeat, int) or action_repeat < 1:
            raise UsageError(f"env.action_repeat must be an integer of at least 1, got {action_repeat!r}")
        if not 0.0 < action_scale <= 0.1:
            raise UsageError(f"env.action_scale {action_scale} is out of range; use 0.01 (1 cm/step) to 0.03 (LAMP)")
        if decimate is not None and not 0.0 <= decimate < 1.0:
            raise UsageError(f"env.decimate {decimate} must be in [0, 1): the fraction of triangles kept (0 = full)")
        p_default = textures.get("p_default", 0.2)
        if not isinstance(p_default, (int, float)) or not 0.0 <= float(p_default) <= 1.0:
            raise UsageError(f"textures.p_default must be within [0, 1], got {p_default}")
        self.task = task
        self.size = size
        self.camera = camera
        self.wrist = wrist
        self.episode_length = episode_length
        self.action_repeat = action_repeat
        self.action_scale = action_scale
        self.reward_mode = reward
        self.render_images = render
        self.decimate = decimate
        # A rendered scene holds ~100 MB (model + GL context); pretraining keeps at most this many (0 = all 36).
        self.max_scenes = max_scenes
        self.texture_size = int(textures.get("size", 256))
        self.p_default = float(p_default)
        # Downstream tasks keep the default look (as in LAMP fine-tuning) unless `textures.randomize` says otherwise.
        randomize = textures.get("randomize", "auto")
        choices = {"auto": task == "pretrain", "always": True, "never": False, True: True, False: False}
        if randomize not in choices:
            raise UsageError(f"textures.randomize '{randomize}' is unknown; use auto, always or never")
        self.randomize = choices[randomize]
        self.bank = TextureBank(textures.get("dir") or None, size=self.texture_size) if self.randomize else None
        self.scene_names = pretrain_pool(pool) if task == "pretrain" else [DOWNSTREAM[task].metaworld]
        self._cameras = (camera, WRIST_CAMERA) if wrist else (camera,)
        self._scenes: dict[str, _Scene] = {}
        self._scene: _Scene | None = None
        self._policies: dict[str, Any] = {}
        self._rng = np.random.default_rng(seed)
        self._steps = 0
        self._needs_reset = True
        self.texture_seconds = 0.0  # time spent choosing/uploading textures in the last reset (for the benchmark)
        self.action_space = action_space()
        self.score_view = bool(score_view)  # also return the front camera at render_size as `score_image`
        self.observation_space = observation_space(size, wrist, 4, self.render_size if score_view else 0)
        if not render:  # physics-only mode (benchmarks, scripted checks): proprio state only
            self.observation_space = gym.spaces.Dict({"state": self.observation_space["state"]})
        if task != "pretrain":
            self._scene = self._get_scene(self.scene_names[0])
        if task == "pick_up_cup":  # the lift goal lies outside pick-place's goal box; don't let obs clipping move it
            space = self._scene.mw.sawyer_observation_space
            unbounded = gym.spaces.Box(-np.inf, np.inf, space.shape, np.float64)
            self._scene.mw.__dict__["sawyer_observation_space"] = unbounded

    # ---------------------------------------------------------------------------------------------------------------
    def _get_scene(self, name: str) -> _Scene:
        """The compiled scene `name`, built on first use; least recently used ones beyond `max_scenes` are freed."""
        if name in self._scenes:
            self._scenes[name] = self._scenes.pop(name)  # mark as most recently used
            return self._scenes[name]
        while self.max_scenes and len(self._scenes) >= self.max_scenes:
            oldest = next(iter(self._scenes))
            self._scenes.pop(oldest).close()
        cams = self._cameras if self.render_images else ()
        self._scenes[name] = _Scene(name, self.render_size, cams, self.texture_size, self.decimate)
        _LIVE_SCENES.add(self._scenes[name])
        return self._scenes[name]

    @property
    def scene(self) -> _Scene:
        """The scene of the current episode."""
        if self._scene is None:
            raise RuntimeError("call reset() before using the env")
        return self._scene

    @property
    def noun(self) -> str:
        return DOWNSTREAM[self.task].noun if self.task in DOWNSTREAM else PRETRAIN_NOUNS[self.scene.name]

    @property
    def instruction(self) -> str:
        """The task's language instruction (downstream) or a generic one naming the scene's object (pretraining)."""
        return DOWNSTREAM[self.task].instruction if self.task in DOWNSTREAM else f"interact with the {self.noun}"

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        # Three independent draws, so e.g. switching textures on does not move the objects of a given seed.
        scene_rng, texture_rng, layout_rng = (
            np.random.default_rng(int(s)) for s in self._rng.integers(1 << 63, size=3)
        )
        name = self.scene_names[int(scene_rng.integers(len(self.scene_names)))]
        self._scene = scene = self._get_scene(name)
        start = time.perf_counter()
        if self.bank is not None and texture_rng.random() >= self.p_default:
            indices = [int(i) for i in texture_rng.integers(len(self.bank), size=len(SURFACES))]
            scene.apply_textures([self.bank.image(i) for i in indices], indices)
        else:
            scene.apply_textures(None, None)
        self.texture_seconds = time.perf_counter() - start
        mw = scene.mw
        mw.np_random = layout_rng  # Meta-World draws the object layout from this (never from the global RNG)
        mw.action_scale = self.action_scale
        raw, _ = mw.reset()
        if self.task == "pick_up_cup":  # goal straight above the cup: Meta-World's reward and success become "lift it"
            mw._target_pos = mw.obj_init_pos + np.array([0.0, 0.0, PICK_UP_HEIGHT])
            mw.model.site("goal").pos = mw._target_pos
            raw = mw._get_obs()
        self._raw = raw
        self._steps = 0
        self._needs_reset = False
        self._episode_info = {"noun": self.noun, "task": self._task_name()}  # fixed for the episode
        info = {"success": False, **self._episode_info, "task_reward": 0.0}
        return self._observe(raw), info

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        """One decision: the action held for `action_repeat` physics frames (MWM's Meta-World setting uses 2), the
        rewards of those frames summed, success if any frame succeeded, and one render at the end."""
        if self._needs_reset:
            raise RuntimeError("episode is over (or never started): call reset() before step()")
        act = check_action(action)
        reward, task_reward, success = 0.0, 0.0, False
        for _ in range(self.action_repeat):
            raw, frame_reward, _, _, mw_info = self.scene.mw.step(act)
            frame_success = bool(mw_info["success"])
            success |= frame_success
            task_reward += float(frame_reward)
            reward += float(frame_reward) if self.reward_mode == "shaped" else float(frame_success)
        self._raw = raw
        self._steps += 1
        truncated = self._steps >= self.episode_length
        self._needs_reset = truncated
        info = {"success": success, **self._episode_info, "task_reward": task_reward}
        return self._observe(raw), reward, False, truncated, info

    def _task_name(self) -> str:
        return self.task if self.task in DOWNSTREAM else self.scene.name.removesuffix("-v3")

    def _observe(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        if self.render_images:
            front = self.scene.render(self.camera)
            obs["image"] = area_downsample(front, self.size)
            if self.wrist:
                obs["wrist"] = area_downsample(self.scene.render(WRIST_CAMERA), self.size)
            if self.score_view:
                obs[SCORER_KEY] = front
        obs["state"] = np.asarray(raw[:4], dtype=np.float32)
        return obs

    def scripted_action(self) -> np.ndarray:
        """Meta-World's hand-written expert action for the current state (tests, demos, sanity checks)."""
        from metaworld.policies import ENV_POLICY_MAP

        if self.scene.name not in self._policies:
            self._policies[self.scene.name] = ENV_POLICY_MAP[self.scene.name]()
        policy = self._policies[self.scene.name]
        with warnings.catch_warnings():  # "Constant(s) may be too high": the policies' gains; clipped right here
            warnings.simplefilter("ignore", UserWarning)
            action = policy.get_action(self._raw)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def render(self) -> np.ndarray:
        return area_downsample(self.scene.render(self.camera), self.size)

    def close(self) -> None:
        for scene in self._scenes.values():
            scene.close()
        self._scenes.clear()
        self._scene = None


def make(task: str, **options: Any) -> MetaWorldEnv:
    """Registry entry point: `envs.make_env("metaworld/<task>", **options)`."""
    return MetaWorldEnv(task, **options)
