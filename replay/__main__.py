"""``python -m replay``: the same as ``oms replay`` (:func:`replay.cli.main`)."""

import sys

from replay.cli import main

sys.exit(main())
