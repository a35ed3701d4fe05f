"""Render the app's windows offscreen at one or more display scales, as PNGs in ``docs/screenshots``.

    python tools/screenshots.py                      # every shot at 1x and 1.5x
    python tools/screenshots.py --scale 1.5 --only settings_units

Each scale runs in a process of its own (Qt fixes the scale when it starts) on a virtual 1366x768
screen (``QT_QPA_PLATFORM=offscreen``, ``QT_SCALE_FACTOR``), so a window filling the screen shows what a
small laptop shows. Files are named ``<name>@<scale>x.png``. Each scale also runs with ``HOME`` set to
an empty folder (its user folders the defaults under it), so the paths the pictures show read like a
user's (``~/.local/share/GhostFace/...``) and no real user data is touched.

Shots are a registry, name -> factory: a factory takes a :class:`Shot` (the demo data, a scratch
folder, a way to wait) and returns the widget to grab, populated. Other modules add shots: every
``tools/screenshot_views_*.py`` with a ``shots()`` function returning ``{name: factory}`` is collected.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GHOSTFACE_SHARED", REPO.parent / "shared"))
DEMO = SHARED / "data" / "demo"
OUT = REPO / "docs" / "screenshots"
SCALES = ("1", "1.5")
# The virtual screen: a common small laptop.
SCREEN = {"width": 1366, "height": 768}
# The PNGs are committed: one larger than this (a photo in it) is reduced to 256 colours.
MAX_PNG_BYTES = 400_000

log = logging.getLogger("screenshots")


@dataclass
class Shot:
    """What a shot factory gets.

    Attributes:
        scratch: an empty folder for this shot (a gallery, a settings file); removed afterwards.
        demo: the demo data folder (photos and the Hamilton clip).
        scale: the display scale of this run ("1", "1.5").
        closers: called after the grab (a window behind a dialog shot shuts down its workers here).
    """

    scratch: Path
    demo: Path
    scale: str
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def wait_until(self, condition: Callable[[], bool], timeout_s: float = 90.0) -> bool:
        """Run the event loop until ``condition()`` holds or ``timeout_s`` passes; returns whether it held."""
        from PySide6.QtWidgets import QApplication

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            QApplication.processEvents()
            if condition():
                return True
            time.sleep(0.02)
        return False

    def settle(self, seconds: float = 0.3) -> None:
        """Let layouts and paints catch up."""
        self.wait_until(lambda: False, seconds)

    def fill_screen(self, widget: Any) -> None:
        """Size ``widget`` to the screen's available area, as a maximised window on the laptop."""
        widget.resize(self.available(widget))

    def available(self, widget: Any = None) -> Any:
        """The screen's available size (a ``QSize``, logical pixels) for ``widget`` (None: the primary)."""
        from PySide6.QtGui import QGuiApplication

        screen = widget.screen() if widget is not None else QGuiApplication.primaryScreen()
        return screen.availableGeometry().size()

    def fit(self, widget: Any, width: int, height: int) -> None:
        """Size ``widget`` to ``width`` x ``height``, or less where the screen is smaller."""
        from PySide6.QtCore import QSize

        widget.resize(QSize(width, height).boundedTo(self.available(widget)))


Factory = Callable[[Shot], Any]


def hamilton_gallery(root: Path) -> Path:
    """A gallery of the two people of the demo clip (the tests' ``hamilton_gallery``), under ``root``."""
    people = {
        "Barack Obama": ["obama.jpg", "obama2.jpg"],
        "Lin-Manuel Miranda": ["lin-manuel-miranda.png"],
    }
    for person, files in people.items():
        (root / person).mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copy(DEMO / name, root / person / name)
    return root


def main_window(shot: Shot) -> Any:
    """The main window on the demo clip, a few frames recognized against the two-person gallery."""
    from app.context import AppContext
    from app.main_window import MainWindow
    from core.settings import Settings

    gallery = hamilton_gallery(shot.scratch / "gallery")
    settings = Settings().replace(
        camera={"source": str(shot.demo / "short_hamilton_clip.mp4")}, gallery_dir=str(gallery)
    )
    window = MainWindow(AppContext.build(settings, system_trash=False), autostart=True)
    shot.fill_screen(window)
    window.show()

    def ready() -> bool:
        result = window.video_view.result
        named = result is not None and any(face.person for face in result.faces)
        stats = window.figures.last_stats
        return named and stats is not None and stats.fps > 0 and window.live.events_panel.row_count() > 0

    if not shot.wait_until(ready, 120.0):
        log.warning("main_window: no named face within 120 s; shooting what is there")
    window.live.people.refresh()
    shot.settle(0.5)
    return window


def settings_units(shot: Shot) -> Any:
    """The settings dialog on its Detection page: units as suffixes, labels in words."""
    from app.settings_dialog import SettingsDialog
    from core.settings import Settings

    dialog = SettingsDialog(Settings(), devices=["cpu"])
    dialog.tabs.setCurrentIndex(0)
    dialog.show()
    dialog.resize(dialog.sizeHint().expandedTo(dialog.minimumSizeHint()))
    return dialog


def settings_events(shot: Shot) -> Any:
    """The settings dialog on its Events page (seconds, days, MB)."""
    dialog = settings_units(shot)
    dialog.tabs.setCurrentIndex([dialog.tabs.tabText(i) for i in range(dialog.tabs.count())].index("Events"))
    return dialog


def settings_recognition(shot: Shot) -> Any:
    """The settings dialog on its Recognition page: the 0-1 threshold, greyed while the model's is used."""
    dialog = settings_units(shot)
    dialog.tabs.setCurrentIndex(1)
    return dialog


def _idle_window(shot: Shot) -> Any:
    """The main window on the two-person gallery, not running, filling the screen."""
    from app.context import AppContext
    from app.main_window import MainWindow
    from core.settings import Settings

    gallery = hamilton_gallery(shot.scratch / "gallery")
    settings = Settings().replace(
        camera={"source": str(shot.demo / "short_hamilton_clip.mp4")}, gallery_dir=str(gallery)
    )
    window = MainWindow(AppContext.build(settings, system_trash=False))
    shot.fill_screen(window)
    window.show()
    return window


def gallery_tab(shot: Shot) -> Any:
    """The Gallery tab on the two-person gallery, once its photos are read."""
    window = _idle_window(shot)
    window.tabs.setCurrentWidget(window.gallery_panel)
    people = getattr(window.gallery_panel, "people_list", None)

    def read() -> bool:
        return not window.gallery_controller.pending and (people is None or people.count() >= 2)

    shot.settle(1.0)
    shot.wait_until(read, 60)
    shot.settle(0.5)
    return window


def plugins_dialog(shot: Shot) -> Any:
    """The Plugins dialog on the snapshot plugin: labels, help and defaults, Browse for its folder."""
    window = _idle_window(shot)
    shot.closers.append(window.shutdown)
    dialog = window.open_plugins()
    dialog.select("snapshot")
    shot.settle()
    return dialog


def empty_state(shot: Shot) -> Any:
    """The Live tab with no camera and no video: what a first start shows, and its buttons."""
    from app.context import AppContext
    from app.main_window import MainWindow
    from core.settings import Settings

    settings = Settings().replace(gallery_dir=str(hamilton_gallery(shot.scratch / "gallery")))
    window = MainWindow(AppContext.build(settings, system_trash=False))  # not started: nothing to show yet
    shot.fill_screen(window)
    window.show()
    shot.settle(1.0)
    return window


SHOTS: dict[str, Factory] = {
    "empty_state": empty_state,
    "gallery_tab": gallery_tab,
    "plugins_dialog": plugins_dialog,
    "main_window": main_window,
    "settings_units": settings_units,
    "settings_events": settings_events,
    "settings_recognition": settings_recognition,
}


def collect(folder: Path | None = None) -> dict[str, Factory]:
    """The built-in shots plus those of every ``screenshot_views_*.py`` module's ``shots()`` in ``folder``.

    Args:
        folder: where to look for the modules; None: ``tools/``, beside this file.
    """
    shots = dict(SHOTS)
    for path in sorted((folder or Path(__file__).resolve().parent).glob("screenshot_views_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # a dataclass in the module looks itself up there
        spec.loader.exec_module(module)
        shots.update(module.shots())
    return shots


def shrink(path: Path, limit: int = MAX_PNG_BYTES) -> None:
    """Reduce a PNG over ``limit`` bytes to 256 colours (dithered), if Pillow is installed."""
    if path.stat().st_size <= limit:
        return
    try:
        from PIL import Image
    except ImportError:
        log.warning("%s is %d KB; install Pillow to reduce it", path.name, path.stat().st_size // 1000)
        return
    with Image.open(path) as image:
        reduced = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    reduced.save(path, optimize=True)
    log.info("reduced %s to 256 colours: %d KB", path.name, path.stat().st_size // 1000)


def _scratch(name: str) -> Path:
    """An empty folder for one shot.

    ``~/Pictures`` under the neutral home the run was given, so the paths a picture shows are a user's; a
    folder of its own in the temporary folder otherwise.
    """
    home = os.environ.get("GHOSTFACE_SHOTS_HOME")
    if home and Path(home) == Path.home():
        scratch = Path(home) / "Pictures"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        return scratch
    return Path(tempfile.mkdtemp(prefix=f"ghostface-shot-{name}-"))


def _file_name(name: str, scale: str) -> str:
    return f"{name}@{scale}x.png"


def run_scale(scale: str, names: list[str], out: Path, theme: str = "dark") -> int:
    """Take the shots in this process (started with the scale set); returns the number that failed."""
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setApplicationName("GhostFace")
    from app.themes import apply_theme

    apply_theme(theme)
    shots = collect()
    failed = 0
    for name in names or list(shots):
        scratch = _scratch(name)
        widget = None
        shot = Shot(scratch, DEMO, scale)
        try:
            widget = shots[name](shot)
            shot.settle()
            path = out / _file_name(name if theme == "dark" else f"{name}-{theme}", scale)
            if not widget.grab().save(str(path)):
                raise OSError(f"could not write {path}")
            shrink(path)
            log.info("saved %s (%dx%d logical)", path, widget.width(), widget.height())
        except Exception:  # noqa: BLE001 - one broken shot must not lose the others
            log.exception("shot %s failed", name)
            failed += 1
        finally:
            if widget is not None:
                if hasattr(widget, "shutdown"):
                    widget.shutdown()
                widget.close()
            for close in shot.closers:
                close()
            shutil.rmtree(scratch, ignore_errors=True)
    return failed


# What moves the user folders away from HOME; unset for the shots, so they follow the neutral HOME.
_USER_FOLDERS = ("GHOSTFACE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR")


def _screen_config(folder: Path) -> Path:
    config = folder / "screen.json"
    screen = {"name": "laptop", "x": 0, "y": 0, **SCREEN, "logicalDpi": 96, "logicalDpiBase": 96, "dpr": 1}
    config.write_text(json.dumps({"windowFrameMargins": False, "screens": [screen]}), encoding="utf-8")
    return config


def main(argv: list[str] | None = None) -> int:
    """Take every shot (or ``--only`` some) at every ``--scale``, each scale in a process of its own."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", action="append", help="display scale, repeatable (default: 1 and 1.5)")
    parser.add_argument("--only", action="append", default=[], help="shot name, repeatable (default: all)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs")
    parser.add_argument("--theme", default="dark", choices=["dark", "light"], help="the theme to shoot in")
    parser.add_argument("--list", action="store_true", help="list the shots and exit")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(REPO))
    if args.list:
        for name in collect():
            sys.stdout.write(name + "\n")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.in_process:
        return 1 if run_scale(os.environ.get("QT_SCALE_FACTOR", "1"), args.only, args.out, args.theme) else 0
    code = 0
    with tempfile.TemporaryDirectory(prefix="ghostface-shots-") as folder:
        env = {key: value for key, value in os.environ.items() if key not in _USER_FOLDERS}
        env.setdefault("GHOSTFACE_MODEL_PATH", str(SHARED / "models"))
        env["GHOSTFACE_MODEL_PATH"] = str(Path(env["GHOSTFACE_MODEL_PATH"]).resolve())  # HOME moves, not cwd
        env["GHOSTFACE_OFFLINE"] = "1"
        env["QT_QPA_PLATFORM"] = f"offscreen:configfile={_screen_config(Path(folder))}"
        for scale in args.scale or SCALES:
            # A fresh, neutral home per scale: the pictures show "~/...", never this machine's folders.
            home = Path(folder) / f"scale-{scale}" / "user"
            home.mkdir(parents=True)
            env.update(HOME=str(home), GHOSTFACE_SHOTS_HOME=str(home))
            command = [sys.executable, str(Path(__file__).resolve()), "--in-process", "--out", str(args.out)]
            command += ["--theme", args.theme]
            command += [item for name in args.only for item in ("--only", name)]
            done = subprocess.run(command, env={**env, "QT_SCALE_FACTOR": scale}, check=False)
            code = code or done.returncode
    return code


if __name__ == "__main__":
    sys.exit(main())
