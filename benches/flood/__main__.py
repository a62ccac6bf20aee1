"""``python -m benches.flood``: see benches/README.md."""

from __future__ import annotations

import sys

from benches.flood.run import main

sys.exit(main())
