"""Enums with the real member names (values are arbitrary ints here)."""

from enum import Enum


class PrimitiveShape(Enum):
    CUBOID = 0
    SPHERE = 1
    CYLINDER = 2
    CONE = 3


class ObjectType(Enum):
    ALL = 0
    SHAPE = 1
    JOINT = 2
    DUMMY = 3
    PATH = 4
    FORCE_SENSOR = 5
    VISION_SENSOR = 6
    PROXIMITY_SENSOR = 7


class ConfigurationPathAlgorithms(Enum):
    BiTRRT = 0
    BITstar = 1
    KPIECE1 = 2
    LBKPIECE1 = 3
    PRM = 4
    RRT = 5
    RRTConnect = 6
    RRTstar = 7


class TextureMappingMode(Enum):
    PLANE = 0
    CYLINDER = 1
    SPHERE = 2
    CUBE = 3


class RenderMode(Enum):
    OPENGL = 0
    OPENGL_AUXILIARY = 1
    OPENGL_COLOR_CODED = 2
    POV_RAY = 3
    EXTERNAL = 4
    EXTERNAL_WINDOWED = 5
    OPENGL3 = 6
    OPENGL3_WINDOWED = 7


class Verbosity(Enum):
    NONE = "none"
    ERRORS = "errors"
    WARNINGS = "warnings"
    LOAD_INFOS = "loadinfos"
    SCRIPT_ERRORS = "scripterrors"
    SCRIPT_WARNINGS = "scriptwarnings"
    SCRIPT_INFOS = "scriptinfos"
    INFOS = "infos"
    DEBUG = "debug"
    TRACE = "trace"
    TRACE_LUA = "tracelua"
    TRACE_ALL = "traceall"
