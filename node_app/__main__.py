"""``python -m node_app``: run the command line (see :mod:`node_app.cli`)."""

import sys

from node_app.cli import main

if __name__ == "__main__":
    sys.exit(main())
