"""The PySide6 desktop application over the engine in :mod:`core`."""
