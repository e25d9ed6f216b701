"""Texture bank: the photos that re-texture table, walls and floor every episode (Ego4D frames in the paper)."""

from __future__ import annotations

from pathlib import Path

from lamp.errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def list_texture_files(directory: str | Path) -> list[Path]:
    """Sorted image files in `directory`; a missing or image-less folder is a UsageError naming it."""
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise UsageError(f"textures.dir '{path}' is not a folder; point textures.dir at a folder of images")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UsageError(
            f"textures.dir '{path}' has no images ({', '.join(IMAGE_SUFFIXES)}); "
            "add photos or build some with 'lamp textures from-videos'"
        )
    return files
