"""GhostFace engine: capture, detection, alignment, embedding, gallery, tracking, pipeline, events.

This package never imports Qt, the app or the trainer (checked by import-linter in ``make test``).
"""

__version__ = "0.1.0"
