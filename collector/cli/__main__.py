"""``python -m edgebench.collector.cli``: the same as the ``edgebench-collector`` command."""

import sys

from edgebench.collector.cli import main

sys.exit(main())
