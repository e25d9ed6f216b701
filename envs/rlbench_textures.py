"""Per-episode re-texturing of RLBench's table, four walls and floor (LAMP's domain randomisation), via PyRep.

We do it ourselves through PyRep's public Shape/texture API rather than through the LAMP fork's
`ObjectwiseRandomizationScene`, so that it works the same on upstream RLBench, the default look is kept with a
configurable probability, and every draw comes from our seeded generator (the fork uses the global np.random).
Textured copies are purely visual: the originals keep their physics and are only hidden while a copy shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.textures import list_texture_files

# (object in RLBench's task_design.ttt, uv scaling) as in the LAMP agent's tex_kwargs (lamp common/envs.py).
TABLE = ("diningTable_visible", (1.6, 1.1))
WALLS = tuple((f"Wall{i}", (5.0, 3.0)) for i in range(1, 5))
FLOOR = ("Floor", (5.0, 5.0))
TARGETS = (TABLE, *WALLS, FLOOR)
FLOOR_LIFT = 0.01  # metres between the floor and its textured copy
DEFAULT_BANK_SIZE = 256


@dataclass
class TextureDraw:
    """What one episode shows: None = the default look, else a texture file per target object."""

    files: dict[str, str] | None

    def summary(self) -> str:
        if self.files is None:
            return "default"
        return ",".join(f"{name}={Path(f).name}" for name, f in self.files.items())


def cache_dir() -> Path:
    """lamp's cache folder ($LAMP_CACHE, default ~/.cache/lamp), as `lamp doctor` reports it."""
    return Path(os.environ.get("LAMP_CACHE", "~/.cache/lamp")).expanduser()


def _default_images(size: int) -> list[tuple[str, np.ndarray]]:
    """The embedded back-end's default bank when it exists; else scikit-image's bundled photos (offline)."""
    try:
        from envs.textures import TextureBank  # provided by the embedded back-end

        bank = TextureBank(None, size=size)
        return [(name, bank.image(i)) for i, name in enumerate(bank.names())]
    except ImportError:
        pass
    import skimage.data
    from PIL import Image

    images = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel"):
        arr = np.asarray(getattr(skimage.data, name)())
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        side = min(arr.shape[:2])
        arr = np.ascontiguousarray(arr[:side, :side, :3])
        images.append((name, np.asarray(Image.fromarray(arr).resize((size, size), Image.BILINEAR), np.uint8)))
    return images


def default_texture_dir(size: int = DEFAULT_BANK_SIZE) -> Path:
    """Write the default bank once as PNGs under $LAMP_CACHE/textures/default (CoppeliaSim loads textures from files).

    Each file is written to a temp name, fsynced and renamed, so parallel workers never read half a PNG.
    """
    from PIL import Image

    folder = cache_dir() / "textures" / "default"
    if folder.is_dir() and any(folder.glob("*.png")):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in _default_images(size):
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(name).stem)
        final = folder / f"{safe}.png"
        tmp = folder / f".{safe}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            Image.fromarray(image).save(fh, format="PNG")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    return folder


class SceneTextures:
    """Draws and applies one texture per target each episode; keeps the default look with probability p_default."""

    def __init__(self, texture_dir: str | Path | None, p_default: float, size: int = DEFAULT_BANK_SIZE) -> None:
        folder = Path(texture_dir).expanduser().resolve() if texture_dir else default_texture_dir(size)
        self.files = [str(p.resolve()) for p in list_texture_files(folder)]
        self.p_default = p_default
        self._copies: dict[str, Any] = {}  # target name -> its textured, visual-only copy (a PyRep Shape)

    def draw(self, rng: np.random.Generator) -> TextureDraw:
        """One draw for the episode; each wall is drawn independently."""
        if rng.random() < self.p_default:
            return TextureDraw(None)
        picks = rng.integers(0, len(self.files), len(TARGETS))
        return TextureDraw({name: self.files[i] for (name, _), i in zip(TARGETS, picks, strict=True)})

    def apply(self, pyrep: Any, draw: TextureDraw) -> None:
        """Show the originals (default look) or the copies textured with the drawn files."""
        from pyrep.const import TextureMappingMode
        from pyrep.objects.shape import Shape

        for name, uv in TARGETS:
            original = Shape(name)
            if draw.files is None:
                original.set_renderable(True)
                if name in self._copies:
                    self._copies[name].set_renderable(False)
                continue
            helper, texture = pyrep.create_texture(draw.files[name])
            kwargs = {
                "mapping_mode": TextureMappingMode.PLANE,
                "repeat_along_u": False,
                "repeat_along_v": False,
                "uv_scaling": list(uv),
            }
            copy = self._copies.get(name)
            if copy is None:
                copy = original.copy()
                copy.set_color([1.0, 1.0, 1.0])  # untinted texture, as LAMP does for the walls
                if name == FLOOR[0]:  # 1 cm above the floor, as the fork and upstream place theirs (no z-fighting)
                    x, y, z = copy.get_position()
                    copy.set_position([x, y, z + FLOOR_LIFT])
            copy = self._copies[name] = _texture(pyrep, copy, texture, kwargs)
            # After every texturing: the table's regrouped compound is a new shape that does not keep these flags.
            copy.set_respondable(False)
            copy.set_collidable(False)
            copy.set_renderable(True)
            original.set_renderable(False)
            helper.remove()


def _texture(pyrep: Any, shape: Any, texture: Any, kwargs: dict) -> Any:
    """Texture a shape; CoppeliaSim refuses compound shapes (the table), so texture its parts and regroup them."""
    try:
        shape.set_texture(texture, **kwargs)
        return shape
    except RuntimeError:
        parts = shape.ungroup()
        for part in parts:
            part.remove_texture()
            part.set_texture(texture, **kwargs)
        return pyrep.group_objects(parts)
