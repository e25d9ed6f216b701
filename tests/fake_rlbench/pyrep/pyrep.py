"""PyRep class: launch/start/step/shutdown, textures and grouping, on the stub world."""

from __future__ import annotations

import os

from . import _world
from .const import Verbosity
from .errors import PyRepError
from .objects.shape import Shape
from .textures.texture import Texture


class PyRep:
    def __init__(self):
        self.running = False
        self._process = None
        if "COPPELIASIM_ROOT" not in os.environ:
            raise PyRepError("COPPELIASIM_ROOT not defined. See installation instructions.")
        self._vrep_root = os.environ["COPPELIASIM_ROOT"]
        if not os.path.exists(self._vrep_root):
            raise PyRepError("COPPELIASIM_ROOT was not a correct path. See installation instructions")

    def launch(
        self,
        scene_file: str = "",
        headless: bool = False,
        responsive_ui: bool = False,
        blocking: bool = False,
        verbosity: Verbosity = Verbosity.NONE,
    ) -> None:
        if scene_file and not os.path.isfile(scene_file):
            raise PyRepError(f"Scene file does not exist: {scene_file}")
        _world.reset_world()

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False

    def step(self) -> None:
        pass

    def shutdown(self) -> None:
        self.running = False

    def group_objects(self, objects: list[Shape]) -> Shape:
        """A new compound shape: it does not keep the respondable/collidable flags of the group it was ungrouped from
        (the stub's parts were copied with their defaults, as the table's are), so callers must set them again."""
        handles = tuple(o.get_handle() for o in objects)
        first = _world.WORLD.objects[handles[0]]
        return Shape(_world.WORLD.add(first.name + "_group", parts=handles, position=first.position))

    def create_texture(
        self, filename: str, interpolate=True, decal_mode=False, repeat_along_u=False, repeat_along_v=False
    ) -> tuple[Shape, Texture]:
        if not os.path.isfile(filename):
            raise RuntimeError(f"simCreateTexture failed: {filename}")
        texture_id = len(_world.WORLD.textures) + 1
        _world.WORLD.textures[texture_id] = filename
        handle = _world.WORLD.add("Plane", texture_file=filename)
        _world.WORLD.objects[handle].texture = filename
        return Shape(handle), Texture(texture_id)
