"""minidl's version, in a leaf module: the grading tools, which load without the engine, record it too."""
__version__ = "0.1.0"
