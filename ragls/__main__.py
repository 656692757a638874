"""``python -m ragls``: the same as the ``ragls`` command (the server starts its indexer this way)."""

import sys

from ragls.cli import main

sys.exit(main())
