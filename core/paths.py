"""Where the application keeps its files: config, data (models, gallery, plugins, history) and cache.

All paths come from platformdirs. The config, data and cache folders are private to the user (0700;
the files in them are written 0600), since they hold names, face thumbnails and face embeddings. ``GHOSTFACE_HOME`` moves every one of them under a single folder,
which the tests use so that a user's real settings and gallery are never touched.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import platformdirs

from core._perms import make_private_dir

log = logging.getLogger(__name__)

__all__ = [
    "cache_dir",
    "config_dir",
    "data_dir",
    "default_gallery_dir",
    "history_path",
    "models_dir",
    "plugins_dir",
    "settings_path",
]

APP_NAME = "GhostFace"
APP_AUTHOR = "GhostFace"


def _home() -> Path | None:
    value = os.environ.get("GHOSTFACE_HOME")
    return Path(value) if value else None


def _ensure(path: Path) -> Path:
    return make_private_dir(path)


def config_dir() -> Path:
    """The config folder (settings), created if needed."""
    home = _home()
    return _ensure(home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR)))


def data_dir(*, create: bool = True) -> Path:
    """The data folder; ``create=False`` only names it (for messages, and folders that are optional)."""
    home = _home()
    path = home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))
    return _ensure(path) if create else path


def cache_dir(*, create: bool = True) -> Path:
    """The cache folder; ``create=False`` only names it."""
    home = _home()
    path = home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR))
    return _ensure(path) if create else path


def models_dir(*, create: bool = True) -> Path:
    """The user's model folder; ``create=False`` only names it."""
    path = data_dir(create=create) / "models"
    return _ensure(path) if create else path


def plugins_dir() -> Path:
    """The user's plugins folder.

    Optional: when it cannot be created (a read-only data folder) it is still named, with a warning
    that says how to fix it, and discovery finds no plugin in it; the app runs without them.
    """
    path = data_dir(create=False) / "plugins"
    try:
        return _ensure(path)
    except OSError as exc:
        log.warning(
            "the plugins folder %s cannot be created (%s); plugins in it are not loaded. To fix it: make "
            "its parent folder writable, or set GHOSTFACE_HOME to a writable folder.",
            path,
            (exc.strerror or type(exc).__name__).lower(),
        )
        return path


def default_gallery_dir() -> Path:
    """The gallery folder used when the settings name none, created if needed."""
    return _ensure(data_dir() / "gallery")


def settings_path() -> Path:
    """The settings file (it may not exist yet)."""
    return config_dir() / "settings.json"


def history_path() -> Path:
    """The history database file; neither it nor its folder is created here."""
    # Not created here: the history makes its folder itself, and copes when it cannot.
    return data_dir(create=False) / "history.sqlite3"
