"""Run a process of the project in which one Python package cannot be imported (as in a bundle without it)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def env_without(package: str, folder: Path) -> dict[str, str]:
    """The environment of a subprocess in which ``import package`` raises ImportError.

    A package of that name, found first on ``PYTHONPATH``, raises when imported: the real import
    machinery fails the way it does where the package is not installed. The user folders are the
    test's own (``GHOSTFACE_HOME`` from the fixtures), so nothing derived is cached from before.
    """
    shadow = folder / "shadow" / package
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text(
        f"raise ImportError(\"No module named '{package}'\", name={package!r})\n", encoding="utf-8"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shadow.parent), str(REPO)])
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env
