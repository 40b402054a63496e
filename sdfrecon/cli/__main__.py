"""``python -m sdfrecon.cli``: the same as the ``sdfrecon`` command."""

from sdfrecon.cli import console

console()
