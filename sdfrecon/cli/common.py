"""What every ``sdfrecon`` subcommand shares: the --debug/--quiet/--verbose options and the
-o alias. Progress bars (tqdm) are drawn only on a terminal and never with --quiet.

A module of its own so that the command modules (reconstruct, evaluate, bench, image, viz) and the
entry point (:mod:`sdfrecon.cli`) all import it and none of them imports another: the command
line stays a tree, with the entry point at the top.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

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
