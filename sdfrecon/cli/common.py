"""What every ``sdfrecon`` subcommand shares: the --debug/--quiet options and the -o alias.

A module of its own so that the command modules (reconstruct, evaluate, bench, image) and the
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
    """Print only warnings and errors."""
