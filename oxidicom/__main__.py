"""``python -m oxidicom`` starts the receiver."""

import sys

from oxidicom.cli import main

sys.exit(main())
