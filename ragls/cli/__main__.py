"""``python -m ragls.cli``: the same entry point as the ``ragls`` command."""

import sys

from ragls.cli import main

sys.exit(main())
