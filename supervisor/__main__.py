"""So that `python -m supervisor` is the same command as `cointoss`."""

import sys

from supervisor.cli import main

sys.exit(main())
