"""Launch the GhostFace desktop application: ``python main.py [--source PATH_OR_INDEX] [--gallery DIR]``."""

from __future__ import annotations

import multiprocessing
import sys

if sys.argv[1:2] == ["--ghostface-plugin-host"]:
    # A frozen build cannot run `python -m core._plugin_host`: it runs itself in this mode to host one
    # isolated plugin (see core/_plugin_host.py), without Qt and without a window.
    from core._plugin_host import main as plugin_host

    sys.exit(plugin_host())

from core.errors import GhostFaceError
from core.runtime import configure_threads

# The thread policy (one BLAS and one torch thread unless the environment says otherwise) must be set
# before numpy loads, hence before the app is imported; a bad GHOSTFACE_TORCH_THREADS is reported by
# app.main.main, which applies the policy again.
try:
    configure_threads()
except GhostFaceError:
    pass  # app.main.main reports it as a usage error

from app.main import main  # noqa: E402 - after the thread policy above

if __name__ == "__main__":
    # In the frozen Windows bundle a DataLoader worker process re-runs this executable; this call makes
    # such a process do its work and exit instead of opening a second window. A no-op otherwise.
    multiprocessing.freeze_support()
    sys.exit(main())
