"""``python -m minidl`` and the ``minidl`` script: the ``minidl`` command."""
import sys


def run():
    """The command, with a Ctrl-C while its modules load (a quarter of a second) said in one line: it was a
    traceback. (One during ``import minidl`` itself, before this runs, still is.)"""
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("minidl: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":   # not when walked by an import of every module
    sys.exit(run())
