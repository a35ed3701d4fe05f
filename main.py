"""Launch the GhostFace desktop application: ``python main.py [--source PATH_OR_INDEX] [--gallery DIR]``."""

from __future__ import annotations

import multiprocessing
import sys

from app.main import main

if __name__ == "__main__":
    # In the frozen Windows bundle a DataLoader worker process re-runs this executable; this call makes
    # such a process do its work and exit instead of opening a second window. A no-op otherwise.
    multiprocessing.freeze_support()
    sys.exit(main())
