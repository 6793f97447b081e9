"""`python -m sesami_client ...`: the `sesami` command."""

import sys

from sesami_client.cli import main

sys.exit(main())
