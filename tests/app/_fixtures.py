"""Kept only for test modules that still import ``hamilton_gallery`` by name; the fixtures live in conftest.py.

Delete this file once no module imports from it (pytest finds conftest fixtures without an import).
"""

from tests.app.conftest import hamilton_gallery

__all__ = ["hamilton_gallery"]
