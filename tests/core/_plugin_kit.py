"""Real plugins for the tests: a folder plugin file and an installed entry-point distribution.

The distribution is built and installed by pip into a temporary folder (``--target``), exactly as a user
would install a plugin package; nothing about discovery is faked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

# A folder plugin as docs/plugins.md teaches it: typed settings, every hook, the public API module.
FOLDER_PLUGIN = '''
"""Writes every event as a JSON line."""
import json
from pathlib import Path

from ghostface_api import API_VERSION, Setting

NAME = "jsonl-log"
API_VERSION = 2
SETTINGS = {
    "path": Setting("", help="the file; empty: events.jsonl in the plugin's own folder"),
    "every": Setting(1, min=1, help="write every n-th event"),
}
_state = {}


def on_start(context):
    path = Path(context.settings["path"] or context.data_dir / "events.jsonl")
    _state["file"] = path.open("a", encoding="utf-8")
    _state["every"] = context.settings["every"]
    _state["n"] = 0


def on_event(event):
    _state["n"] += 1
    if _state["n"] % _state["every"] == 0:
        _state["file"].write(json.dumps(event.to_dict()) + "\\n")
        _state["file"].flush()


def on_stop():
    _state["file"].write(json.dumps({"stopped": True}) + "\\n")
    _state["file"].close()
'''

# The entry-point plugin: a class with typed settings and an async hook.
DOORBELL = '''
"""Rings a (logged) doorbell for people in view; the kind of package a user pip-installs."""
import asyncio
import json
from pathlib import Path

from ghostface_api import EventKind, Setting


class Doorbell:
    NAME = "doorbell"
    API_VERSION = 2
    SETTINGS = {
        "log": Setting("", help="where the rings are written"),
        "chime": Setting("ding", choices=("ding", "dong"), help="the sound"),
        "token": Setting("", secret=True, help="the bell's API token"),
    }

    def on_start(self, context):
        self.path = Path(context.settings["log"] or context.data_dir / "rings.jsonl")
        self.chime = context.settings["chime"]

    async def on_event(self, event):
        await asyncio.sleep(0)  # an async hook runs to completion on the plugin's own loop
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"chime": self.chime, **event.to_dict()}) + "\\n")

    def on_stop(self):
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"stopped": True}) + "\\n")
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def build_distribution(
    workdir: Path, dist: str, package: str, source: str, entry_points: dict[str, str]
) -> Path:
    """Build and install a one-package distribution into ``workdir/site``; returns that folder.

    Args:
        dist: the distribution's name (``ghostface-doorbell``).
        package: its import package (``ghostface_doorbell``).
        source: the package's ``__init__.py``.
        entry_points: entry-point name to ``module:attr`` in the group ``ghostface.plugins``.
    """
    src = workdir / "src"
    write(src, f"{package}/__init__.py", source)
    eps = "\n".join(f'{name} = "{value}"' for name, value in entry_points.items())
    write(
        src,
        "pyproject.toml",
        f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "1.0"

        [project.entry-points."ghostface.plugins"]
        {eps}
        """,
    )
    site = workdir / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


def read_jsonl(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
