"""The ``ghostface`` command line: the engine (:mod:`core`) and the trainer (:mod:`trainer`), without the GUI.

It sits above both packages and never imports Qt or the app (checked by import-linter in ``make test``).
The thread policy (:mod:`core.runtime`: one BLAS thread, one torch thread, a value the user set wins) must
be in force before numpy loads its BLAS, so it is set as soon as this package is imported, ahead of every
subcommand module; :func:`cli.main.main` confirms it once it knows the subcommand.
"""

from core.runtime import configure_threads

configure_threads(manage_torch=False)
