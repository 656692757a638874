"""``python -m benchmarks.replay``: see :mod:`benchmarks.replay.runner`."""

import sys

from benchmarks.replay.runner import main

sys.exit(main())
