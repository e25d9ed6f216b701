from .object import Object  # noqa: F401
from .shape import Shape  # noqa: F401
