"""The PySide6 desktop application over the engine in :mod:`core`."""

from app._pyside_workaround import immortalize_singletons

immortalize_singletons()
