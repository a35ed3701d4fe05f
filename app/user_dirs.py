"""Where file dialogs start: the user's own folders, never the program's (the working directory)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths

__all__ = ["display_path", "start_folder"]


def start_folder(current: str = "", *, kind: str = "pictures") -> str:
    """The folder a file dialog opens in.

    Args:
        current: the value being edited (a file or folder); its folder is used when it exists.
        kind: ``pictures`` or ``videos``: the user's folder of that kind when it exists, else home.
    """
    if current:
        path = Path(current).expanduser()
        folder = path if path.is_dir() else path.parent
        if path.is_absolute() and folder.is_dir():
            return str(folder)
    location = {
        "pictures": QStandardPaths.StandardLocation.PicturesLocation,
        "videos": QStandardPaths.StandardLocation.MoviesLocation,
    }.get(kind, QStandardPaths.StandardLocation.HomeLocation)
    for candidate in QStandardPaths.standardLocations(location):
        if candidate and Path(candidate).is_dir():
            return candidate
    return str(Path.home())


def display_path(path: str | Path) -> str:
    """``path`` as a person reads it: under the home folder as ``~/...``, anything else unchanged.

    Only for text that is shown, never typed back unexpanded: the full path tells nothing the short one
    does not, and a long one crowds out what matters (the folder's own name).
    """
    text = str(path)
    if not text:
        return text
    home = Path.home()
    try:
        relative = Path(text).expanduser().relative_to(home)
    except ValueError:
        return text
    return "~" if relative == Path() else str(Path("~") / relative)
