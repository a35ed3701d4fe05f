"""Ready-to-grab gallery views filled with the demo photos, for the screenshots in docs/screenshots/.

``shots()`` maps a title to a factory; ``tools/screenshots.py`` collects them and calls each with its
``Shot`` (a scratch folder, the screen). Each factory builds its view on a copy of the demo gallery in the
scratch folder, runs the real gallery worker until the view is filled, and returns the widget, shown and
sized to fit the screen.

The demo data is read from ``../shared/data/demo`` beside the repository (``GHOSTFACE_SHARED`` moves it).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GHOSTFACE_SHARED", REPO.parent / "shared"))
DEMO = SHARED / "data" / "demo"
TIMEOUT_S = 120.0


def _environment(shot: Any) -> Path:
    """The shared models (unless chosen); returns the shot's scratch folder."""
    os.environ.setdefault("GHOSTFACE_MODEL_PATH", str(SHARED / "models"))
    os.environ.setdefault("GHOSTFACE_OFFLINE", "1")
    return Path(shot.scratch)


def _demo_gallery(folder: Path) -> Path:
    """The demo photos' gallery, with a wrong photo in Obama's folder (for the review to flag)."""
    root = folder / "gallery"
    shutil.copytree(DEMO / "knn_examples" / "train", root)
    shutil.copy(DEMO / "obama-480p.jpg", root / "obama" / "obama3.jpg")
    shutil.copy(DEMO / "biden.jpg", root / "obama" / "obama4.jpg")
    return root


def _wait(done: Callable[[], bool]) -> None:
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the gallery worker did not finish in time")
        QApplication.processEvents()
        time.sleep(0.01)


def _controller(root: Path):  # -> GalleryController, synced
    from app.gallery_worker import GalleryController, SyncGallery
    from core.settings import Settings

    controller = GalleryController(Settings().replace(gallery_dir=str(root)))
    controller.use_system_trash = False
    controller.submit(SyncGallery())
    _wait(lambda: controller.pending == 0)
    return controller


def person_view(shot: Any):  # -> QWidget
    """Obama's photos: faces, quality, agreement; the wrong photo flagged."""
    from app.person_view import PersonView

    controller = _controller(_demo_gallery(_environment(shot)))
    view = PersonView(controller, "obama", confirm=False)  # sizes itself to the screen
    view.show()
    _wait(lambda: view.review is not None)
    view.select_photo("obama4.jpg")
    controller.stop()
    return view


def gallery_tiles(shot: Any):  # -> QWidget
    """The Gallery tab: each person's face, and the photos in use."""
    from app.fit import keep_toolbars_whole
    from app.gallery_panel import GalleryPanel
    from core.settings import Settings

    root = _demo_gallery(_environment(shot))
    controller = _controller(root)
    panel = GalleryPanel(controller, Settings().replace(gallery_dir=str(root)))
    keep_toolbars_whole(panel)  # as in the main window: icons alone when the text does not fit
    shot.fit(panel, 1200, 640)
    panel.show()
    controller.refresh()
    _wait(lambda: len(panel.people) > 0 and controller.pending == 0)
    panel.select("obama")
    controller.stop()
    return panel


def face_picker(shot: Any):  # -> QWidget
    """Picking Obama's face in a photo of two people, the face chosen."""
    from app.face_picker import FacePickerDialog

    root = _demo_gallery(_environment(shot))
    controller = _controller(root)
    dialog = FacePickerDialog(controller, "obama", str(DEMO / "two_people.jpg"))
    dialog.show()
    _wait(lambda: dialog.candidates is not None)
    boxes = dialog.candidates.boxes
    dialog.choose(min(range(len(boxes)), key=lambda i: boxes[i][0]))  # Obama is on the left
    controller.stop()
    return dialog


def assign_face(shot: Any):  # -> QWidget
    """Assigning an unknown face (an event's thumbnail) to a new person."""
    import cv2

    from app.assign_face import AssignFaceDialog
    from core.events import encode_thumbnail

    root = _demo_gallery(_environment(shot))
    controller = _controller(root)
    frame = cv2.imread(str(DEMO / "two_people.jpg"))
    people = sorted(p.name for p in root.iterdir())
    dialog = AssignFaceDialog(
        controller, people, jpeg=encode_thumbnail(frame, (790.0, 49.0, 937.0, 256.0)), name="Joe Biden"
    )
    dialog.show()
    controller.stop()
    return dialog


def shots() -> dict[str, Callable[[Any], object]]:
    """Title -> a factory returning the ready, shown widget."""
    return {
        "gallery_tiles": gallery_tiles,
        "person_view": person_view,
        "face_picker": face_picker,
        "assign_face": assign_face,
    }

