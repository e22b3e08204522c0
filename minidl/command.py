"""How every ``minidl`` command is declared and run, with nothing of the engine: the parser (each option's help
shows its default), the option types with argparse's one-line errors, commands loaded when they run (``_call``),
and ``run``, which turns the user's errors into one line. ``minidl.cli`` builds the parser of every command on it;
``minidl_script.py`` builds ``minidl grade``'s alone on it where the engine does not import (a student's
SyntaxError in an op), so that the broken copy is still graded."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings

from .backend import get_backend
from .errors import MinidlError


class HelpFormatter(argparse.HelpFormatter):
    """Ends each option's help with "(default: X)", the value argparse fills in. Not where X is None,
    empty or a store_true flag's False: there the help says in words what happens without the
    option (e.g. "default: all")."""

    def _get_help_string(self, action):
        # Python 3.10's BooleanOptionalAction appends the same words itself; decide here instead
        text = (action.help or "").removesuffix(" (default: %(default)s)")
        default = action.default
        shown = (default is not argparse.SUPPRESS and default is not None
                 and not (default is False and not isinstance(action, argparse.BooleanOptionalAction))
                 and not (isinstance(default, (list, tuple, dict)) and not default))
        if shown and (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)):
            text += " (default: %(default)s)"
        return text


class ArgumentParser(argparse.ArgumentParser):
    """The parser of ``minidl`` and, through ``add_subparsers`` (which makes sub-parsers of the
    parent's class), of every sub-command: each one's --help shows the defaults."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        """Every error of the command line is one line, not after the usage (train's is 28 lines): a value one
        option refuses or lacks ("argument --out: an empty path; ..."), and an unknown option or a required one
        left out, which says where the options are listed."""
        if self._subparsers is not None and message.startswith("the following arguments are required"):
            commands = next(a for a in self._subparsers._group_actions if isinstance(a, argparse._SubParsersAction))
            message = f"give a command: {', '.join(commands.choices)}"   # ("required: what", a name never typed)
        if not message.startswith("argument "):
            message += f" (see {self.prog} --help)"
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        """An option the command does not know is its error ("minidl train: error: unrecognized
        arguments: --lr-decay", with train's usage), not the top parser's list of every command.
        A command's words may come before, between or after its options (``vectors neighbours
        FILE -k 3 good bad``): argparse's intermixed parsing, which parses twice."""
        if self.prog == "minidl" or self._subparsers is not None or getattr(self, "_parsing", False):
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            parsed, extra = super().parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        for action in self._actions:   # "" (an unset $OUT) was read as "." (compress, data) or as none (train)
            value = getattr(parsed, action.dest, None) if action.dest in PATHS else None
            if value == "" or isinstance(value, list) and "" in value:
                self.error(f"argument {'/'.join(action.option_strings) or action.dest}: an empty path; give a file "
                           f"or folder")
        return parsed, extra


# the options (and command words) that name a file or a folder
PATHS = {"checkpoint", "classifier", "csv", "data", "data_path", "decoder", "dest", "directory", "embeddings", "file",
         "json", "out", "path", "reference", "results", "resume_from", "root", "runs", "student", "submissions",
         "teacher", "test_data", "validation_data"}   # (json: grade --json FILE; elsewhere a flag, never "")


def _converted(text, convert, accept, error):
    """``convert(text)`` where that works and ``accept`` takes the value, else argparse's one-line
    ``error`` (a format string of ``text``): the body of an argparse ``type=``."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not accept(value):
        raise argparse.ArgumentTypeError(error.format(text=text))
    return value


def at_least(minimum):
    """An argparse ``type=``: a whole number >= ``minimum`` (a count, limit, size, step or k), or
    argparse's one-line error, "argument --steps: must be a whole number >= 1, got -5"."""
    def whole_number(text):
        return _converted(text, int, lambda value: value >= minimum,
                          f"must be a whole number >= {minimum}, got {{text}}")
    return whole_number


def positive(text):
    """An argparse ``type=``: a finite number > 0 (a learning rate, a time, a temperature), or
    argparse's one-line error."""
    return _converted(text, float, lambda value: 0 < value < float("inf"), "must be a number > 0, finite, got {text}")


def comma_items(text):
    """``"2, 8"`` -> ["2", "8"]; an empty item (``"2,,8"``, ``"2,8,"``) is a one-line ValueError: dropped, a rank or
    seed the user meant to type ran unseen without it. An empty text is [""], for the caller to say what to give."""
    items = [item.strip() for item in str(text).split(",")]
    if len(items) > 1 and "" in items:
        raise ValueError(f"an empty item in {text!r}; remove the extra comma or give the missing value")
    return items


def whole_numbers(minimum):
    """An argparse ``type=``: comma-separated whole numbers >= ``minimum``, "2,8,32" -> [2, 8, 32]."""
    def listed(text):
        try:
            comma_items(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        numbers = _converted(text, lambda text: [int(part) for part in text.split(",")],
                             lambda numbers: min(numbers) >= minimum,
                             f"give whole numbers >= {minimum}, comma-separated, got {{text!r}}")
        return _once(numbers, text)   # a seed or rank run twice
    return listed


def _once(values, text):
    """``values`` (parsed from ``text``) if none is repeated, else argparse's one-line error naming the repeats."""
    if repeated := sorted({v for v in values if values.count(v) > 1}):
        raise argparse.ArgumentTypeError(f"{', '.join(map(str, repeated))} given more than once in {text!r}; "
                                         f"give each once")
    return values


def _call(module, function):
    """A command that lives in ``module``, imported only when it runs (``minidl --help`` stays
    fast); ``function(args)`` returns the exit code."""
    def run(args):
        return getattr(importlib.import_module(module), function)(args)
    return run


def run(args):
    """Run the parsed command ``args.run(args)``; its exit code (0 on success). Errors from the user's input or the
    machine (a bad setting, a missing file, a full disk) print one line, ``minidl <command>: <what is wrong and what
    to do>`` (``args.prog`` in place of ``minidl <command>`` where set: ``python -m theory.gradient_flow``), and exit 1;
    ``--debug`` shows the traceback."""
    before = _saved_state(args)
    if hasattr(sys.stdout, "reconfigure"):   # progress lines reach a pipe (| tee) as they are printed, not at the end
        sys.stdout.reconfigure(line_buffering=True)

    name = getattr(args, "prog", None) or " ".join(filter(None, ("minidl", args.command, getattr(args, "what", None))))
    try:
        with warnings.catch_warnings():
            if not args.debug:
                _one_line_warnings(name)
            _check_device(getattr(args, "device", None))
            return args.run(args)
    except BrokenPipeError:   # the reader stopped (e.g. `| head`): what it wanted was printed
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # so exiting flushes nowhere, silently
        return 141
    except KeyboardInterrupt:
        print(f"{name}: interrupted{_resumable(args, before)}", file=sys.stderr)
        return 130
    except (MinidlError, ValueError, OSError, MemoryError) as e:
        if args.debug:
            raise
        if isinstance(e, FileNotFoundError) and e.filename:
            message = f"no such file or folder: {e.filename!r}; check the path"
        elif isinstance(e, IsADirectoryError) and e.filename:   # was "[Errno 21] Is a directory: '.'"
            message = f"{e.filename!r} is a folder; give the path of a file"
        elif isinstance(e, MemoryError):   # --hidden 99999999 was a traceback of NumPy's allocator
            message = f"out of memory: {e or 'an array did not fit'}; give smaller sizes{_size_options(args)}"
        else:
            message = f"{e}" + ("" if isinstance(e, (MinidlError, OSError)) else " (--debug shows where)")
        print(f"{name}: {message}", file=sys.stderr)
        return 1


def _size_options(args):
    """The out-of-memory hint's examples, " (e.g. --hidden, --batch-size)": of the options that size a model or a
    batch, those the command has (bench transformer was told of --hidden and --batch-size, which it has not)."""
    sizes = [f"--{key.replace('_', '-')}" for key in ("hidden", "d_model", "d_ff", "shape", "batch_size", "batch",
                                                        "vocab", "lengths", "length", "width") if hasattr(args, key)]
    return f" (e.g. {', '.join(sizes)})" if sizes else ""


def _saved_state(args):
    """(the file --resume goes on from, its inode and time of change) for a command that has --resume
    and an --out; (None, None) otherwise or when there is no such file yet."""
    if getattr(args, "resume", None) is None or not args.out:
        return None, None
    from .mlm.pretrain import state_path

    path = state_path(args.out) if args.command == "mlm" else os.path.join(args.out, "last.npz")
    with contextlib.suppress(OSError):
        stat = os.stat(path)
        return path, (stat.st_ino, stat.st_mtime_ns)
    return path, None


def _resumable(args, before):
    """What an interrupted command that has --resume can go on from: the state it saved (or resumed),
    if any; not that of a run it was replacing, whose file is as it was (``before``: _saved_state at
    the start). The message promised "the last checkpoint" also before the first, and without --out."""
    if getattr(args, "resume", None) is None:
        return ""
    path, now = _saved_state(args)
    if now is not None and (args.resume or now != before[1]):
        return f"; --resume goes on from {path}"
    return "; nothing was saved yet" + ("" if args.out else " (give --out to keep checkpoints)")


def _one_line_warnings(name):
    """Show what minidl warns of (UserWarnings: the user's data, a results file) as one line,
    ``<name>: warning: ...``, not with Python's file, line and source; others as before."""
    show = warnings.showwarning

    def one_line(message, category, *where):
        if issubclass(category, UserWarning):
            print(f"{name}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *where)
    warnings.showwarning = one_line


def _check_device(device):
    """A command's --device, before any work: an unknown name, or a GPU this machine does not
    have, is the user's error (one line), not a traceback at the first tensor."""
    if isinstance(device, str):
        try:
            get_backend(device)
        except (RuntimeError, ValueError) as e:
            raise MinidlError(str(e)) from None
