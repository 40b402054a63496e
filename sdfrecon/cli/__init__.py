"""The ``sdfrecon`` console script: one small dataclass per subcommand, options built from
the config dataclasses by tyro (their field docstrings are the --help text).

Library code never parses arguments or exits; this module turns InputError into one line
on stderr and exit code 2, and TrainingError into exit code 1. Heavy imports (torch,
open3d) happen inside ``run`` so that ``--help`` is instant. A command class with a
``prepare_args`` static method rewrites its own arguments before tyro parses them
(fit-image's ``--preset NAME`` becomes a tyro subcommand).
"""

from __future__ import annotations

import logging
import sys

import tyro

from sdfrecon.cli.common import Common
from sdfrecon.errors import InputError, TrainingError


def commands() -> dict[str, type]:
    """The subcommands, in --help order (each command module is small and imports only
    :mod:`sdfrecon.cli.common`; the work happens in ``run``)."""
    from sdfrecon.cli.bench import Bench, Poisson
    from sdfrecon.cli.evaluate import Check, Evaluate, Sample
    from sdfrecon.cli.hyper import Hyper
    from sdfrecon.cli.image import Blend, FitImage, RenderImage
    from sdfrecon.cli.reconstruct import Extract, Reconstruct
    from sdfrecon.cli.viz import Render

    return {
        "reconstruct": Reconstruct, "extract": Extract, "evaluate": Evaluate, "check": Check, "sample": Sample,
        "poisson": Poisson, "bench": Bench, "render": Render,
        "fit-image": FitImage, "render-image": RenderImage, "blend": Blend, "hyper": Hyper,
    }


def _setup_logging(quiet: bool, verbose: bool = False) -> None:
    """--quiet: warnings and errors only; --verbose: debug messages too (of sdfrecon, not
    of the libraries); neither: sdfrecon's progress messages."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sdfrecon: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    logging.getLogger("sdfrecon").setLevel(logging.DEBUG if verbose and not quiet else logging.NOTSET)


def parse(argv: list[str] | None = None) -> Common:
    """The command object of a command line (default: ``sys.argv[1:]``), its ``run`` not yet
    called. The command's ``prepare_args``, where it has one, rewrites the arguments after
    the command's name first; it raises InputError for arguments it refuses. tyro exits with
    code 2 (and its own message) for the rest of the bad command lines.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    table = commands()
    for i, arg in enumerate(args):
        if arg.startswith("-"):
            continue  # --help before the command's name
        prepare = getattr(table.get(arg), "prepare_args", None)
        if prepare is not None:
            args[i + 1:] = prepare(args[i + 1:])
        break
    return tyro.extras.subcommand_cli_from_dict(table, prog="sdfrecon", args=args)


def console() -> None:
    """The console script (``sdfrecon``, ``python -m sdfrecon.cli``): :func:`main`, then exit.
    After a command that asks for it (``exit_fast``: everything it writes is closed by then,
    and it leaves nothing to run at exit), the process ends without the interpreter's
    teardown, which with torch loaded takes about a second of the user's wait for nothing."""
    import os
    import time

    from sdfrecon.timing import process_age

    code, command = run(None, started=time.perf_counter() - process_age())
    if getattr(command, "exit_fast", False):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run a command line (default: ``sys.argv[1:]``); returns the exit code."""
    return run(argv)[0]


def run(argv: list[str] | None, started: float | None = None) -> tuple[int, Common | None]:
    """The exit code of a command line, and its command object (None where it did not parse).
    started: the process's start (time.perf_counter()), for the command's timings."""
    try:
        command = parse(argv)
    except InputError as err:
        print(f"sdfrecon: error: {err}", file=sys.stderr)
        return 2, None
    command.started = started
    if command.quiet and command.verbose:
        print("sdfrecon: error: --quiet and --verbose: choose one", file=sys.stderr)
        return 2, command
    _setup_logging(command.quiet, command.verbose)
    try:
        command.run()
    except InputError as err:
        if command.debug:
            raise
        print(f"sdfrecon: error: {err}", file=sys.stderr)
        return 2, command
    except TrainingError as err:
        if command.debug:
            raise
        print(f"sdfrecon: error: {err}", file=sys.stderr)
        return 1, command
    except KeyboardInterrupt:
        print("sdfrecon: interrupted", file=sys.stderr)
        return 130, command
    return 0, command
