"""Object: name/handle lookup and the scene-object properties the adapter uses."""

from __future__ import annotations

import numpy as np

from .. import _world
from ..errors import ObjectAlreadyRemovedError


class Object:
    def __init__(self, name_or_handle: str | int):
        if isinstance(name_or_handle, int):
            self._handle = name_or_handle
        else:
            self._handle = _world.WORLD.find(name_or_handle)

    def _rec(self) -> _world.Record:
        rec = _world.WORLD.objects[self._handle]
        if rec.removed:
            raise ObjectAlreadyRemovedError(f"Object {rec.name} was removed")
        return rec

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Object) and other.get_handle() == self.get_handle()

    def __hash__(self) -> int:
        return hash(self._handle)

    @staticmethod
    def exists(name: str) -> bool:
        try:
            _world.WORLD.find(name)
        except RuntimeError:
            return False
        return True

    def get_handle(self) -> int:
        return self._handle

    def still_exists(self) -> bool:
        return not _world.WORLD.objects[self._handle].removed

    def get_name(self) -> str:
        return self._rec().name

    def is_renderable(self) -> bool:
        return self._rec().renderable

    def set_renderable(self, value: bool) -> None:
        self._rec().renderable = bool(value)

    def is_collidable(self) -> bool:
        return self._rec().collidable

    def set_collidable(self, value: bool) -> None:
        self._rec().collidable = bool(value)

    def get_position(self, relative_to=None) -> np.ndarray:
        return np.array(self._rec().position, dtype=np.float64)

    def set_position(self, position, relative_to=None, reset_dynamics: bool = True) -> None:
        if relative_to is not None:
            raise NotImplementedError("stub: positions are world-frame only")
        self._rec().position = tuple(float(v) for v in position)

    def remove(self) -> None:
        self._rec().removed = True

    def copy(self) -> Object:
        rec = self._rec()
        parts = tuple(_world.WORLD.add(_world.WORLD.objects[p].name) for p in rec.parts)
        handle = _world.WORLD.add(
            rec.name,
            renderable=rec.renderable,
            respondable=rec.respondable,
            texture=rec.texture,
            color=rec.color,
            parts=parts,
            position=rec.position,
        )
        return type(self)(handle)
