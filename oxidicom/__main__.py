"""``python -m oxidicom`` starts the receiver."""

import sys

from oxidicom.entry import main

sys.exit(main())
