"""``python -m gentool_router.cli``: the same as the ``gentool-router`` command."""

import sys

from . import main

sys.exit(main())
