"""``python -m minidl``: the ``minidl`` command."""
import sys

from .cli import main

if __name__ == "__main__":   # not when walked by an import of every module
    sys.exit(main())
