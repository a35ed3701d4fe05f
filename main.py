"""Launch the GhostFace desktop application: ``python main.py [--source PATH_OR_INDEX] [--gallery DIR]``."""

from __future__ import annotations

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main())
