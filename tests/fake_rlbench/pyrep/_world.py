"""Stub-only scene graph: named objects with renderable flags and textures, and a log of texture applications."""

from __future__ import annotations

from dataclasses import dataclass, field

# Scene objects of RLBench's task_design.ttt that the LAMP randomiser touches; the table is a compound shape.
SCENE_OBJECTS = ("Floor", "Roof", "Wall1", "Wall2", "Wall3", "Wall4", "diningTable_visible")
COMPOUND_PARTS = {"diningTable_visible": ("diningTable_top", "diningTable_legs")}
SCENE_POSITIONS = {"Floor": (0.0, 0.0, 0.0), "diningTable_visible": (0.0, 0.0, 0.38), "Roof": (0.0, 0.0, 3.0)}


@dataclass
class Record:
    name: str
    renderable: bool = True
    respondable: bool = True
    collidable: bool = True
    texture: str | None = None
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    parts: tuple[int, ...] = ()  # handles of the parts of a compound shape
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    removed: bool = False
    texture_file: str | None = None  # for the helper planes made by create_texture


@dataclass
class World:
    objects: dict[int, Record] = field(default_factory=dict)
    next_handle: int = 1
    texture_log: list[tuple[str, str | None, dict]] = field(default_factory=list)
    textures: dict[int, str] = field(default_factory=dict)  # texture id -> file

    def add(self, name: str, **kw) -> int:
        handle = self.next_handle
        self.next_handle += 1
        base, n = name, 0
        while any(r.name == name and not r.removed for r in self.objects.values()):
            name = f"{base}#{n}"
            n += 1
        self.objects[handle] = Record(name=name, **kw)
        return handle

    def find(self, name: str) -> int:
        for handle, rec in self.objects.items():
            if rec.name == name and not rec.removed:
                return handle
        raise RuntimeError(f"Object does not exist: {name}")

    def populate(self) -> None:
        for name in SCENE_OBJECTS:
            parts = tuple(self.add(p) for p in COMPOUND_PARTS.get(name, ()))
            self.add(name, parts=parts, position=SCENE_POSITIONS.get(name, (0.0, 0.0, 0.0)))

    def visible_texture(self, prefix: str) -> str | None:
        """Texture seen where objects named `prefix`* are: the newest renderable one wins (copies lie on top)."""
        parts_of_live = {p for r in self.objects.values() if not r.removed for p in r.parts}
        for handle in sorted(self.objects, reverse=True):
            rec = self.objects[handle]
            if rec.removed or handle in parts_of_live or not rec.renderable or not rec.name.startswith(prefix):
                continue
            return self.objects[rec.parts[0]].texture if rec.parts else rec.texture
        return None


WORLD = World()


def reset_world() -> None:
    global WORLD
    WORLD = World()
    WORLD.populate()
