"""Shape: textures, colour, respondability and (un)grouping, as in pyrep/objects/shape.py."""

from __future__ import annotations

from .. import _world
from ..const import TextureMappingMode
from ..textures.texture import Texture
from .object import Object


class Shape(Object):
    def is_respondable(self) -> bool:
        return self._rec().respondable

    def set_respondable(self, value: bool) -> None:
        self._rec().respondable = bool(value)

    def get_color(self) -> list[float]:
        return list(self._rec().color)

    def set_color(self, color: list[float]) -> None:
        self._rec().color = tuple(float(c) for c in color)

    def get_texture(self) -> Texture:
        return Texture(-1)

    def remove_texture(self) -> None:
        self._rec().texture = None

    def set_texture(
        self,
        texture: Texture,
        mapping_mode: TextureMappingMode,
        interpolate=True,
        decal_mode=False,
        repeat_along_u=False,
        repeat_along_v=False,
        uv_scaling=[1.0, 1.0],
        position=None,
        orientation=None,
    ) -> None:
        rec = self._rec()
        if rec.parts:  # CoppeliaSim cannot texture a compound shape: callers ungroup first (as RLBench does)
            raise RuntimeError("simSetShapeTexture failed: compound shape")
        if not isinstance(mapping_mode, TextureMappingMode):
            raise TypeError("mapping_mode must be a TextureMappingMode")
        rec.texture = _world.WORLD.textures[texture.get_texture_id()]
        _world.WORLD.texture_log.append(
            (
                rec.name,
                rec.texture,
                {
                    "mapping_mode": mapping_mode,
                    "repeat_along_u": repeat_along_u,
                    "repeat_along_v": repeat_along_v,
                    "uv_scaling": list(uv_scaling),
                },
            )
        )

    def ungroup(self) -> list[Shape]:
        rec = self._rec()
        if not rec.parts:
            return [self]
        rec.removed = True
        return [Shape(p) for p in rec.parts]
