"""The ``minidl`` script (pyproject.toml's [project.scripts]) and ``python -m minidl``.

It sits beside the package, not in it, on purpose: where the package's own code does not import (a student's
SyntaxError in an op of the assignment), ``import minidl`` fails before any code inside the package could
answer. Here that is one line naming the error and its file, and ``minidl grade`` still grades the copy, on the
grading tools alone (they need nothing of the engine): every check whose test imports minidl fails, naming it.
"""
import importlib.util
import sys
import traceback


def main(argv=None):
    """The ``minidl`` command; its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        from minidl.cli import main as run_command
    except KeyboardInterrupt:   # Ctrl-C while the modules load (a quarter of a second)
        print("minidl: interrupted", file=sys.stderr)
        return 130
    except Exception as error:   # noqa: BLE001  (any error of the code being imported, the student's included)
        if "--debug" in argv:
            raise
        return _without_the_engine(argv, error)
    return run_command(argv)


def _without_the_engine(argv, error):
    """``minidl grade`` run by the grading tools alone (in a bare ``minidl`` package: its __init__, which loads the
    engine, not run); any other command: one line saying what does not import, and what to do."""
    broken = f"minidl does not import: {_where(error)}; fix it and run the command again (--debug shows the traceback)"
    if argv[:1] == ["grade"]:
        try:
            parser, run = _grading_parser()
        except Exception:   # noqa: BLE001  (the grading tools themselves do not import either)
            pass
        else:
            print(f"minidl grade: warning: {broken}; every check that imports minidl fails", file=sys.stderr)
            return run(parser.parse_args(argv))
    print(f"minidl: {broken}", file=sys.stderr)
    return 1


def _where(error):
    """"SyntaxError: invalid syntax (minidl/autograd/ops/activations.py, line 136)": the error, and the file and
    line of the code that raised it (a SyntaxError's own; else the innermost frame of the traceback)."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{type(error).__name__}: {error.msg} ({error.filename}, line {error.lineno})"
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{type(error).__name__}: {error} ({frame.filename}, line {frame.lineno})"


def _grading_parser():
    """(the parser of ``minidl assignment`` and ``minidl grade``, minidl.command.run) from a bare ``minidl``
    package: the modules that did load before the error are forgotten."""
    for name in [name for name in sys.modules if name == "minidl" or name.startswith("minidl.")]:
        del sys.modules[name]
    sys.modules["minidl"] = importlib.util.module_from_spec(importlib.util.find_spec("minidl"))
    from minidl.assignment.commands import add_arguments
    from minidl.command import ArgumentParser, run

    parser = ArgumentParser(prog="minidl", description="minidl's grading tools (the rest of minidl does not import)")
    parser.add_argument("--debug", action="store_true", help="on an error, show the Python traceback too")
    add_arguments(parser.add_subparsers(dest="command", required=True))
    return parser, run


if __name__ == "__main__":
    sys.exit(main())
