"""The ``minidl`` script (pyproject.toml's [project.scripts]).

It sits beside the package, not in it, on purpose. ``minidl grade`` runs on the grading tools alone, in a bare
``minidl`` package (its __init__, which loads the engine, not run): the graded code runs only in the tests'
processes, under the time limits, so a student's SyntaxError, failed import or endless loop in a module fails the
checks that load it, not the grading (it was a traceback, or a silent hang before any limit). Any other command
where the package does not import says so in one line, naming the file.
"""
import importlib.util
import sys
import traceback


def main(argv=None):
    """The ``minidl`` command; its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:   # the imports alone: an error of the command itself is its own (run's one line, or a traceback)
        if [word for word in argv if word != "--debug"][:1] == ["grade"]:
            run_command = _grading()
        else:
            from minidl.cli import main as run_command
    except KeyboardInterrupt:   # Ctrl-C while the modules load (a quarter of a second)
        print("minidl: interrupted", file=sys.stderr)
        return 130
    except Exception as error:   # noqa: BLE001  (any error of the code being imported, the student's included)
        if "--debug" in argv:
            raise
        print(f"minidl: minidl does not import: {_where(error)}; fix it and run the command again (--debug shows "
              f"the traceback)", file=sys.stderr)
        return 1
    return run_command(argv)


def _where(error):
    """"SyntaxError: invalid syntax (minidl/autograd/ops/activations.py, line 136)": the error, and the file and
    line of the code that raised it (a SyntaxError's own; else the innermost frame of the traceback)."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{type(error).__name__}: {error.msg} ({error.filename}, line {error.lineno})"
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{type(error).__name__}: {error} ({frame.filename}, line {frame.lineno})"


def _grading():
    """The command ``minidl grade ...`` (argv -> its exit code) with the parser of ``minidl assignment`` and ``minidl
    grade`` alone, from a bare ``minidl`` package."""
    if "minidl" not in sys.modules:
        sys.modules["minidl"] = importlib.util.module_from_spec(importlib.util.find_spec("minidl"))
    from minidl.assignment.commands import add_arguments
    from minidl.command import ArgumentParser, run

    parser = ArgumentParser(prog="minidl", description="minidl: a from-scratch deep-learning framework")
    parser.add_argument("--debug", action="store_true", help="on an error, show the Python traceback too")
    add_arguments(parser.add_subparsers(dest="command", required=True))
    return lambda argv: run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
