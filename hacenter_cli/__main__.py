"""`python -m hacenter_cli`: the same as the `hacenter` command."""

import sys

from hacenter_cli.main import main

sys.exit(main())
