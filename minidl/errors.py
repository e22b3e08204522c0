"""The errors minidl raises on purpose. A leaf module (it imports nothing of minidl), so that the command line's
one-line answers, the grading tools and every layer can name them without loading the engine."""


class MinidlError(Exception):
    """Base class of the errors minidl raises on purpose."""


class ShapeError(MinidlError, ValueError):
    """Inputs whose shapes an op cannot combine; the message names the op and the shapes."""


class OpError(MinidlError, ValueError):
    """An op refusing an argument that is not a shape (an unknown option, an index out of
    range, a negative radius); the message names the op and what to do."""
