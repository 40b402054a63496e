"""What every ``sdfrecon`` subcommand shares: the --debug/--quiet/--verbose options and the
-o alias. Progress bars (tqdm) are drawn only on a terminal and never with --quiet.

A module of its own so that the command modules (reconstruct, evaluate, bench, image, viz) and the
entry point (:mod:`sdfrecon.cli`) all import it and none of them imports another: the command
line stays a tree, with the entry point at the top.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from sdfrecon.errors import InputError

Output = Annotated[Path, tyro.conf.arg(aliases=("-o",))]
"""An output path, given as ``-o PATH`` or ``--output PATH``."""


@dataclass(kw_only=True)
class Common:
    debug: bool = False
    """Show tracebacks for errors (normally one line)."""
    quiet: bool = False
    """Print only warnings and errors: no progress messages and no progress bars."""
    verbose: bool = False
    """Print debug messages too (for example the traceback of a failed bench job)."""
    started: tyro.conf.Suppress[float | None] = None
    """time.perf_counter() at the process's start, set by the console script (so that a
    command's timings include the interpreter and imports); None in-process: from run()."""


def preset_type(presets: dict, helps: dict):
    """tyro's type for a config chosen by a subcommand per preset (``preset:NAME``), whose
    defaults are that preset's whole config (options given explicitly always win)."""
    return Annotated[
        tyro.extras.subcommand_type_from_defaults(
            {f"preset:{name}": config for name, config in presets.items()},
            {f"preset:{name}": text for name, text in helps.items()},
            prefix_names=False,
        ),
        tyro.conf.OmitArgPrefixes,
    ]


def preset_args(args: list[str], presets: dict, default: str | None = None) -> list[str]:
    """A command's arguments (those after its name) with ``--preset NAME`` or
    ``--preset=NAME`` replaced by the preset's subcommand ``preset:NAME``, put first so that
    every option that follows is read against the preset's defaults (tyro takes the command's
    other options after it too). Without --preset the arguments are unchanged and tyro starts
    from the command's default preset (or, given ``default``, that preset's subcommand is put
    first: tyro then never has to guess it); the last --preset counts. ``presets``: the
    command's named configs. Raises InputError for a missing or unknown name.
    """
    choices = ", ".join(presets)
    rest: list[str] = []
    name = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg == "--preset":
            if i + 1 == len(args) or args[i + 1].startswith("-"):
                raise InputError("--preset", f"expected a value, one of {choices}")
            name, i = args[i + 1], i + 2
        elif arg.startswith("--preset="):
            name, i = arg.partition("=")[2], i + 1
        else:
            rest.append(arg)
            i += 1
            continue
        if name not in presets:
            raise InputError("--preset", f"invalid choice '{name}' (expected one of {choices})")
    name = default if name is None else name
    return rest if name is None else [f"preset:{name}", *rest]


def other_runnable_tasks(samples: int = 3, interval: float = 0.01) -> int:
    """Tasks other than this one that the kernel has ready to run (Linux /proc/loadavg's
    running count, the least of a few samples); 0 where it cannot be read."""
    import time

    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return 0
        if i + 1 < samples:
            time.sleep(interval)
    return max(min(counts), 0)


def passive_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spinning when other jobs already use the
    cores, unless OMP_WAIT_POLICY is set.

    On a machine shared with other jobs, PyTorch's spinning threads take the cores the work
    needs and a SIREN step can take several times longer (a 300-step reconstruct with another
    job on both cores: 57 s passive against 203 s spinning); on an idle machine spinning is
    faster (300 steps of the default: 8.2 s against 11.2 s passive). Only effective before
    torch is first imported (the commands import it late, in ``run``).
    """
    if "OMP_WAIT_POLICY" in os.environ:
        return
    if other_runnable_tasks() >= max((os.cpu_count() or 1) // 2, 1):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
