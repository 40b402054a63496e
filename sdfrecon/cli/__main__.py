"""``python -m sdfrecon.cli``: the same as the ``sdfrecon`` command."""

import sys

from sdfrecon.cli import main

sys.exit(main())
