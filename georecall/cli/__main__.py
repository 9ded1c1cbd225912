"""``python -m georecall.cli``: the same command line as ``georecall``."""

import sys

from georecall.cli import main

sys.exit(main())
