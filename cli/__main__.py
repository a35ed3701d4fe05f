"""``python -m cli``: the ``ghostface`` console script."""

import sys

from cli.main import main

sys.exit(main())
