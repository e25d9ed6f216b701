"""Stand-in for PyRep 4.1.0 (tests only)."""

__version__ = "4.1.0.3"

testing = False

from .pyrep import PyRep  # noqa: E402,F401
