"""The stub's whole simulator: tip, gripper, task objects, and images that are flat colours keyed by textures."""

from __future__ import annotations

import hashlib
import math

import numpy as np
from pyrep import _world
from pyrep.errors import ConfigurationPathError

from rlbench import _stub
from rlbench.backend.observation import Observation
from rlbench.backend.robot import Robot, _Arm, _Gripper

STEPS_BEFORE_EPISODE_START = 10
TIP_START = np.array([0.28, 0.0, 1.47])
WORKSPACE = ((-0.3, 0.8), (-0.6, 0.6), (0.75, 1.75))
CAMERAS = ("left_shoulder", "right_shoulder", "overhead", "wrist", "front")
DEFAULT_COLORS = {"Wall": (200, 200, 190), "diningTable": (120, 80, 40), "Floor": (90, 90, 90)}


def _color(texture: str | None, region: str) -> np.ndarray:
    if texture is None:
        return np.array(DEFAULT_COLORS[region], np.uint8)
    digest = hashlib.sha256(texture.encode()).digest()
    return np.frombuffer(digest[:3], np.uint8).copy()


class Scene:
    def __init__(self, pyrep, robot_setup: str = "panda", obs_config=None):
        self.pyrep = pyrep
        self._obs_config = obs_config
        self.robot_setup = robot_setup
        self.task = None
        self._has_init_task = False
        self.tip = TIP_START.copy()
        self.tip_quat = np.array([0.0, 1.0, 0.0, 0.0])
        self.gripper_open = True
        self.grasped: set[str] = set()
        self.objects: dict[str, np.ndarray] = {}
        self.planning_faults: list[Exception] = []
        self.robot = Robot(_Arm(self), _Gripper(self))
        self._removed = {name: name not in _cam_names(obs_config, name) for name in CAMERAS}

    # --- simulation -------------------------------------------------------------------------------
    def load(self, task) -> None:
        """As RLBench's Scene.load: the task's init_task() does NOT run here but at the first init_episode (reset)."""
        task.load()
        self.task = task
        self._has_init_task = False

    def unload(self) -> None:
        if self.task is not None and self._has_init_task:
            self.task.cleanup_()
        self.task = None

    def init_task(self) -> None:
        _stub.counters["init_task"] = _stub.counters.get("init_task", 0) + 1
        self.task.init_task()
        self._has_init_task = True

    def reset(self) -> None:
        self.tip = TIP_START.copy()
        self.tip_quat = np.array([0.0, 1.0, 0.0, 0.0])
        self.gripper_open = True
        self.grasped = set()
        if self.task is not None and self._has_init_task:
            self.task.cleanup_()

    def init_episode(self, index: int, randomly_place: bool = True, max_attempts: int = 5) -> list[str]:
        if not self._has_init_task:  # lazily, as RLBench does: settings made on the task before this are overwritten
            self.init_task()
        descriptions = self.task.init_episode(index)
        for _ in range(STEPS_BEFORE_EPISODE_START):
            self.step()
        return descriptions

    def step(self) -> None:
        _stub.counters["physics_steps"] = _stub.counters.get("physics_steps", 0) + 1
        for name in self.grasped:
            self.objects[name] = self.tip.copy()
        self.task.step()

    def in_workspace(self, pos) -> bool:
        return all(lo < v < hi for v, (lo, hi) in zip(pos, WORKSPACE, strict=True))

    def pop_planning_fault(self) -> Exception | None:
        return self.planning_faults.pop(0) if self.planning_faults else None

    def move_tip(self, target) -> None:
        start = self.tip.copy()
        delta = np.asarray(target[:3]) - start
        k = max(1, math.ceil(float(np.linalg.norm(delta)) / 0.01))
        for i in range(1, k + 1):
            self.tip = start + delta * i / k
            self.step()
            if self.task.success()[0]:
                break
        self.tip_quat = np.asarray(target[3:], dtype=np.float64) / np.linalg.norm(target[3:])

    def set_gripper(self, open_: bool, attach: bool = True) -> None:
        self.gripper_open = open_
        if open_:
            self.grasped = set()
            for _ in range(10):
                self.step()
        elif attach:
            for name in self.task.graspable:
                if np.linalg.norm(self.objects[name] - self.tip) < 0.04:
                    self.grasped.add(name)

    # --- observation ------------------------------------------------------------------------------
    def _render(self, camera: str, size) -> np.ndarray:
        """uint8 (H, W, 3) with H = size[1]: walls on top rows, table below, floor at the bottom; row 0 is the top."""
        w, h = size
        img = np.zeros((h, w, 3), np.uint8)
        world = _world.WORLD
        if camera == "wrist":
            img[:] = _color(world.visible_texture("diningTable"), "diningTable")
            rel = self.objects.get(self.task.main_object) if self.task.main_object else None
            if rel is not None:
                _disc(img, (rel - self.tip)[:2] / 0.3, (255, 255, 255))
            return img
        bands = [("Wall", h // 3), ("diningTable", h // 3), ("Floor", h - 2 * (h // 3))]
        row = 0
        for region, rows in bands:
            if region == "Wall":  # each wall fills a quarter of the width, so walls are told apart
                for i in range(4):
                    tex = world.visible_texture(f"Wall{i + 1}")
                    img[row : row + rows, i * w // 4 : (i + 1) * w // 4] = _color(tex, "Wall")
            else:
                img[row : row + rows] = _color(world.visible_texture(region), region)
            row += rows
        for name in self.task.graspable or ([self.task.main_object] if self.task.main_object else []):
            if name in self.objects:  # task objects as green discs, seen from the front
                pos = self.objects[name]
                _disc(img, np.array([pos[1], -(pos[0] - 0.25)]) / 0.6, (0, 255, 0))
        _disc(
            img, np.array([self.tip[1], -(self.tip[0] - 0.25)]) / 0.6, (255, 0, 0) if self.gripper_open else (0, 0, 255)
        )
        return img

    def get_observation(self) -> Observation:
        cfg = self._obs_config
        images = {}
        for cam in CAMERAS:
            cc = getattr(cfg, f"{cam}_camera")
            on = not self._removed[cam]
            rgb = self._render(cam, cc.image_size) if on and cc.rgb else None
            w, h = cc.image_size
            depth = np.full((h, w), 0.5, np.float32) if on and cc.depth else None
            pcd = np.zeros((h, w, 3), np.float32) if on and cc.point_cloud else None
            mask = np.zeros((h, w), np.float32) if on and cc.mask else None
            images[cam] = (rgb, depth, mask, pcd)
        misc = {}
        for cam in CAMERAS:
            if not self._removed[cam]:
                misc.update(
                    {
                        f"{cam}_camera_extrinsics": np.eye(4),
                        f"{cam}_camera_intrinsics": np.eye(3),
                        f"{cam}_camera_near": 0.01,
                        f"{cam}_camera_far": 4.5,
                    }
                )
        arm, gripper = self.robot.arm, self.robot.gripper
        return Observation(
            *images["left_shoulder"],
            *images["right_shoulder"],
            *images["overhead"],
            *images["wrist"],
            *images["front"],
            joint_velocities=arm.get_joint_velocities() if cfg.joint_velocities else None,
            joint_positions=arm.get_joint_positions() if cfg.joint_positions else None,
            joint_forces=arm.get_joint_forces() if cfg.joint_forces else None,
            gripper_open=(1.0 if gripper.get_open_amount()[0] > 0.9 else 0.0) if cfg.gripper_open else None,
            gripper_pose=arm.get_tip().get_pose() if cfg.gripper_pose else None,
            gripper_matrix=np.eye(4) if cfg.gripper_matrix else None,
            gripper_joint_positions=gripper.get_joint_positions() if cfg.gripper_joint_positions else None,
            gripper_touch_forces=np.zeros(6) if cfg.gripper_touch_forces else None,
            task_low_dim_state=self.task.get_low_dim_state() if cfg.task_low_dim_state else None,
            misc=misc,
        )


def _cam_names(obs_config, name: str) -> set[str]:
    """Cameras whose sensor survives: RLBench removes a sensor when rgb, depth and point cloud are all off."""
    kept = set()
    for cam in CAMERAS:
        cc = getattr(obs_config, f"{cam}_camera")
        if cc.rgb or cc.depth or cc.point_cloud:
            kept.add(cam)
    return kept


def _disc(img: np.ndarray, xy: np.ndarray, color) -> None:
    h, w = img.shape[:2]
    cx, cy = (0.5 + 0.5 * np.clip(xy, -1, 1)) * [w - 1, h - 1]
    yy, xx = np.mgrid[:h, :w]
    img[(xx - cx) ** 2 + (yy - cy) ** 2 <= max(1.0, w / 16) ** 2] = color


__all__ = ["ConfigurationPathError", "Scene"]
