"""Texture bank: the photos that re-texture table, walls and floor every episode (Ego4D frames in the paper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


# --------------------------------------------------------------------------------------------------------------------
# Texture bank: a fixed, ordered list of images, so a seed picks the same photos on every machine.

SKIMAGE_RGB = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
SKIMAGE_GREY = ("camera", "brick", "grass", "gravel", "moon", "coins", "page", "text", "clock")
N_PROCEDURAL = 16
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def _square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to size x size RGB uint8 (textures are square in the GL bank)."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    arr = arr[..., :3]
    h, w = arr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = np.ascontiguousarray(arr[top : top + side, left : left + side])
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def procedural_texture(index: int, size: int) -> np.ndarray:
    """Deterministic synthetic texture number `index`: checkers, stripes, blobs or gradients in random colours."""
    rng = np.random.default_rng(1000 + index)
    colours = rng.integers(0, 256, (2, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = index % 4
    if kind == 0:  # checkerboard
        n = int(rng.integers(4, 16))
        mask = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float32)
    elif kind == 1:  # stripes at a random angle
        angle, freq = rng.uniform(0, np.pi), rng.uniform(4, 20)
        mask = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
    elif kind == 2:  # smooth blobs: low-frequency noise upsampled
        from PIL import Image

        coarse = rng.random((6, 6)).astype(np.float32)
        mask = np.asarray(Image.fromarray(coarse, mode="F").resize((size, size), Image.BICUBIC))
        mask = (mask - mask.min()) / max(float(np.ptp(mask)), 1e-6)
    else:  # gradient plus fine noise
        mask = np.clip(0.7 * xx + 0.3 * rng.random((size, size)), 0, 1)
    mixed = colours[0] * (1 - mask[..., None]) + colours[1] * mask[..., None]
    return mixed.astype(np.uint8)


class TextureBank:
    """An ordered list of texture sources; `image(i)` decodes, crops and resizes one (cached, at most `cache` kept).

    With `directory=None` the bank is the default offline one: scikit-image's bundled photos, Meta-World's own
    wood/metal/floor textures and procedural patterns. A folder is checked up front, so a broken file fails at start.
    """

    def __init__(self, directory: str | Path | None = None, size: int = 256, cache: int = 256) -> None:
        self.size = size
        self._cache: dict[int, np.ndarray] = {}
        self._cache_limit = cache
        if directory is None:
            self.sources: list[tuple[str, str]] = default_sources()
        else:
            files = list_texture_files(directory)
            for path in files:
                check_image_file(path)
            self.sources = [("file", str(p)) for p in files]

    def __len__(self) -> int:
        return len(self.sources)

    def names(self) -> list[str]:
        """Human-readable name of every texture, in bank order."""
        return [name if kind != "file" else Path(name).name for kind, name in self.sources]

    def image(self, index: int) -> np.ndarray:
        """Texture `index` as (size, size, 3) uint8."""
        if index not in self._cache:
            if len(self._cache) >= self._cache_limit:
                self._cache.pop(next(iter(self._cache)))
            self._cache[index] = self._load(*self.sources[index])
        return self._cache[index]

    def _load(self, kind: str, name: str) -> np.ndarray:
        if kind == "procedural":
            return procedural_texture(int(name.split("_")[1]), self.size)
        if kind == "skimage":
            import skimage.data

            return _square(getattr(skimage.data, name)(), self.size)
        try:
            import imageio.v3 as iio

            return _square(iio.imread(name), self.size)
        except Exception as err:  # any decoder failure is the user's file, not our bug
            raise UsageError(
                f"texture file '{name}' cannot be read ({type(err).__name__}); remove or replace it"
            ) from err


def check_image_file(path: Path) -> None:
    """Cheap header check of one image file; a broken one is a UsageError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise UsageError(
            f"texture file '{path}' cannot be read as an image ({type(err).__name__}); remove or replace it"
        ) from err


def default_sources() -> list[tuple[str, str]]:
    """The default offline bank: real photos shipped in scikit-image, Meta-World's textures, procedural patterns."""
    sources: list[tuple[str, str]] = [("skimage", n) for n in SKIMAGE_RGB + SKIMAGE_GREY]
    try:
        import metaworld

        folder = Path(metaworld.__file__).parent / "assets" / "textures"
        sources += [("file", str(p)) for p in sorted(folder.glob("*.png"))]
    except ImportError:  # the bank still works for other back-ends without Meta-World
        pass
    sources += [("procedural", f"procedural_{i}") for i in range(N_PROCEDURAL)]
    return sources


# --------------------------------------------------------------------------------------------------------------------
# `lamp textures from-videos`: turn a folder of videos (e.g. Ego4D clips) into a texture folder.


def frames_from_videos(video_dir: str | Path, out_dir: str | Path, every: int = 30, size: int = 256) -> list[Path]:
    """Save every `every`-th frame of each video in `video_dir` as a size x size PNG in `out_dir`; returns the files.

    Frames are centre-cropped to a square. Each PNG is written to a temp name and renamed, so a crash leaves no
    half-written image in the bank.
    """
    import imageio.v3 as iio

    if every < 1:
        raise UsageError(f"--every must be at least 1, got {every}")
    if size < 8:
        raise UsageError(f"--size must be at least 8 pixels, got {size}")
    src = Path(video_dir).expanduser()
    if not src.is_dir():
        raise UsageError(f"video folder '{src}' is not a folder; pass a folder of videos ({', '.join(VIDEO_SUFFIXES)})")
    videos = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise UsageError(f"video folder '{src}' has no videos ({', '.join(VIDEO_SUFFIXES)})")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for video in videos:
        try:
            for index, frame in enumerate(iio.imiter(video, plugin="FFMPEG")):
                if index % every:
                    continue
                target = out / f"{video.stem}_{index:06d}.png"
                tmp = target.with_name(target.name + ".tmp")
                iio.imwrite(tmp, _square(frame, size), extension=".png")
                tmp.replace(target)
                written.append(target)
        except (OSError, RuntimeError, ValueError) as err:
            raise UsageError(
                f"video '{video}' cannot be decoded ({type(err).__name__}); remove or re-encode it"
            ) from err
    return written
