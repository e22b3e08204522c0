"""``python -m minidl``: the ``minidl`` command (minidl_script.py, beside the package, which the script runs too)."""
import sys

if __name__ == "__main__":   # not when walked by an import of every module
    from minidl_script import main

    sys.exit(main())
