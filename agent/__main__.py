"""Allow `python -m agent` to run the CLI."""

import sys

from agent.cli import main

sys.exit(main())
