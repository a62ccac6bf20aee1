"""``python -m oxidicom`` starts the receiver."""

import sys

from oxidicom.app.entry import main

sys.exit(main())
