"""Managing faces in the GUI, with the real gallery worker and models: pick a group photo's face, review a
person's photos, assign a face seen in the video to a person."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.assign_face import FaceAssigner
from app.events_panel import EventsPanel
from app.gallery_panel import GalleryPanel
from app.gallery_worker import GalleryController, SyncGallery
from app.person_view import PersonView
from app.recognition_worker import RecognitionController
from core.events import encode_thumbnail
from core.face_choice import read_choice
from core.gallery import PhotoResult, PhotoStatus
from core.settings import Settings
from core.types import EventKind, RecognitionEvent

JOB_TIMEOUT_MS = 60_000


@pytest.fixture
def panel(qtbot, demo_gallery: Path):
    settings = Settings().replace(gallery_dir=str(demo_gallery))
    controller = GalleryController(settings)
    controller.use_system_trash = False
    widget = GalleryPanel(controller, settings)
    widget.set_confirm(False)
    qtbot.addWidget(widget)
    with qtbot.waitSignal(controller.busy_changed, timeout=JOB_TIMEOUT_MS, check_params_cb=lambda b: not b):
        controller.submit(SyncGallery())
    yield widget, controller
    assert controller.stop()


def _idle(qtbot, controller: GalleryController) -> None:
    qtbot.waitUntil(lambda: controller.pending == 0, timeout=JOB_TIMEOUT_MS)


def _tile(widget: GalleryPanel, name: str):
    for i in range(widget.people_list.count()):
        item = widget.people_list.item(i)
        if item.data(Qt.ItemDataRole.UserRole) == name:
            return item
    raise AssertionError(f"no tile for {name}")


def test_tiles_show_a_face_and_count_only_photos_in_use(qtbot, panel, demo_gallery: Path) -> None:
    widget, _controller = panel
    qtbot.waitUntil(lambda: len(widget.people) == 6, timeout=5000)
    # The faces are cut out after the list is shown (a large gallery is listed at once).
    qtbot.waitUntil(lambda: all(p.face_jpeg for p in widget.people), timeout=JOB_TIMEOUT_MS)
    # biden/ holds biden.jpg and the group photo biden2.jpg: one photo of Biden, not two.
    biden = _tile(widget, "biden")
    assert biden.text() == "biden\n1 photo" and "1 not used" in biden.toolTip()
    # The tile is the face, not the whole 970x2204 photo: a crop about as wide as it is high.
    size = biden.icon().availableSizes()[0]
    assert 0.6 < size.width() / size.height() < 1.2
    person = next(p for p in widget.people if p.name == "biden")
    assert person.face_photo == demo_gallery / "biden" / "biden.jpg" and person.face_jpeg[:2] == b"\xff\xd8"


def test_pick_the_face_in_a_group_photo_by_clicking_it(
    qtbot, panel, demo_dir: Path, demo_gallery: Path
) -> None:
    widget, controller = panel
    # Add the two-person photo to Obama: it has two faces, so the picker opens by itself.
    widget.add_photos([str(demo_dir / "two_people.jpg")], name="obama")
    qtbot.waitUntil(lambda: widget.face_picker is not None, timeout=JOB_TIMEOUT_MS)
    picker = widget.face_picker
    qtbot.waitUntil(lambda: picker.candidates is not None, timeout=JOB_TIMEOUT_MS)
    assert len(picker.candidates.boxes) == 2 and picker.photo.chosen == -1
    # Each face is shown as a crop too, ready to click.
    qtbot.waitUntil(lambda: all(picker.crop_group.button(i).isVisible() for i in range(2)), timeout=5000)
    assert "2 faces found" in picker.hint.text()
    ok = picker.buttons.button(picker.buttons.StandardButton.Ok)
    assert not ok.isEnabled()  # nothing chosen yet
    # Obama is on the left: click his face on the photo itself.
    obama = min(range(2), key=lambda i: picker.candidates.boxes[i][0])
    qtbot.mouseClick(picker.photo, Qt.MouseButton.LeftButton, pos=picker.photo.widget_center(obama).toPoint())
    assert picker.chosen == obama and picker.crop_group.button(obama).isChecked() and ok.isEnabled()
    chosen_box = picker.candidates.boxes[obama]
    with qtbot.waitSignal(picker.finished, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert picker.result_value.ok, picker.result_value.message
    saved = picker.result_value.path
    assert saved.parent == demo_gallery / "obama"
    assert read_choice(saved) is not None and np.allclose(read_choice(saved).box, chosen_box, atol=0.1)
    _idle(qtbot, controller)
    # The group photo now counts as one of Obama's photos, and its face agrees with his other photos.
    qtbot.waitUntil(lambda: _tile(widget, "obama").text() == "obama\n3 photos", timeout=5000)
    view = widget.open_person("obama")
    qtbot.waitUntil(lambda: view.review is not None, timeout=JOB_TIMEOUT_MS)
    group = next(p for p in view.review.photos if p.path == saved)
    assert group.used and not group.outlier and group.similarity is not None and group.similarity > 0.5
    view.close()
    _idle(qtbot, controller)


def test_person_view_flags_a_wrong_photo_and_removes_it(
    qtbot, panel, demo_dir: Path, demo_gallery: Path
) -> None:
    widget, controller = panel
    shutil.copy(demo_dir / "obama-480p.jpg", demo_gallery / "obama" / "obama3.jpg")
    wrong = demo_gallery / "obama" / "z-wrong.jpg"
    shutil.copy(demo_dir / "biden.jpg", wrong)
    with qtbot.waitSignal(controller.busy_changed, timeout=JOB_TIMEOUT_MS, check_params_cb=lambda b: not b):
        controller.submit(SyncGallery())
    widget.select("obama")
    view = widget.open_person()
    qtbot.waitUntil(lambda: view.review is not None, timeout=JOB_TIMEOUT_MS)
    assert view.photo_names() == ["obama.jpg", "obama2.jpg", "obama3.jpg", "z-wrong.jpg"]
    assert view.table.rowCount() == 4
    status = [view.table.item(r, 4).text() for r in range(4)]
    assert status[:3] == ["In use"] * 3 and status[3].startswith("Check:")
    assert "z-wrong.jpg" in view.summary.text()
    assert not view.table.item(0, 0).icon().isNull()  # each photo shows its face
    assert view.table.item(0, 2).text() == "240 px, sharp" and float(view.table.item(0, 3).text()) > 0.5

    view.select_photo("z-wrong.jpg")
    qtbot.mouseClick(view.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: view.photo_names() == ["obama.jpg", "obama2.jpg", "obama3.jpg"], timeout=JOB_TIMEOUT_MS
    )
    removed = view.last_removed
    assert not wrong.exists() and removed.location.read_bytes() == (demo_dir / "biden.jpg").read_bytes()
    assert [view.table.item(r, 4).text() for r in range(3)] == ["In use"] * 3
    view.close()
    _idle(qtbot, controller)


def _event(frame: np.ndarray, box: tuple[float, float, float, float]) -> RecognitionEvent:
    return RecognitionEvent(
        kind=EventKind.UNKNOWN,
        time=1.0e9,
        source="clip",
        track_id=7,
        person=None,
        similarity=0.1,
        box=box,
        thumbnail=encode_thumbnail(frame, box),
    )


def test_assign_an_unknown_event_to_a_new_person_and_refuse_a_blurred_one(
    qtbot, panel, demo_dir: Path, demo_gallery: Path
) -> None:
    widget, controller = panel
    frame = cv2.imread(str(demo_dir / "two_people.jpg"))
    events = EventsPanel()
    qtbot.addWidget(events)
    good = _event(frame, (234.0, 21.0, 383.0, 226.0))
    blurred = _event(cv2.blur(frame, (31, 31)), (234.0, 21.0, 383.0, 226.0))
    events.add_events([good, blurred])  # the newest first: row 0 is the blurred one
    assigner = FaceAssigner(controller)
    table = events.table
    assigner.attach_events(table, lambda row: table.item(row, 0).data(Qt.ItemDataRole.UserRole))
    controller.refresh()
    _idle(qtbot, controller)
    assert "obama" in assigner.people

    # The context menu offers the action on a row with a thumbnail.
    menu = assigner._menu(table, table.visualItemRect(table.item(0, 1)).center())
    assert menu is not None and menu.actions()[0].text() == "Assign to person…"
    menu.close()

    dialog = assigner.open_dialog(**assigner.face_at(table, 0))
    dialog.assign("Barack Obama")
    qtbot.waitUntil(lambda: dialog.result_value is not None, timeout=JOB_TIMEOUT_MS)
    assert dialog.isVisible() and "blurred" in dialog.message.text()  # refused, with the reason
    assert not (demo_gallery / "Barack Obama").exists()
    dialog.reject()

    dialog = assigner.open_dialog(**assigner.face_at(table, 1))
    with qtbot.waitSignal(dialog.finished, timeout=JOB_TIMEOUT_MS):
        dialog.assign("Barack Obama")
    saved = dialog.result_value.path
    assert saved.parent == demo_gallery / "Barack Obama" and saved.exists()
    qtbot.waitUntil(
        lambda: any(p.name == "Barack Obama" and p.embedded == 1 for p in widget.people), timeout=5000
    )


def test_live_people_list_assigns_the_latest_crop(qtbot, panel, demo_dir: Path, demo_gallery: Path) -> None:
    from app.live_panel import PeopleInView
    from core.detection import create_detector
    from core.types import Face, FrameResult, Match

    widget, controller = panel
    frame = cv2.imread(str(demo_dir / "two_people.jpg"))
    faces = tuple(
        Face(detection=d, track_id=i + 1, match=Match(None, 0.1), unknown_id=i + 11)
        for i, d in enumerate(create_detector("yunet").detect(frame))
    )
    result = FrameResult(frame=frame, frame_index=0, timestamp=0.0, faces=faces)
    people = PeopleInView()
    qtbot.addWidget(people)
    assigner = FaceAssigner(controller)

    # What the window attaches: the recognition controller, whose frame_ready the live view draws.
    source = RecognitionController(Settings().replace(gallery_dir=str(demo_gallery)))
    assigner.attach_live(people, source)
    source.frame_ready.emit(result)
    people.update_from(result)
    people.refresh()
    assert people.topLevelItemCount() == 2
    # The next frame shows only the first face: the other one is still offered, cut from its last sighting.
    gone = people.topLevelItem(1).text(0)
    source.frame_ready.emit(FrameResult(frame=frame, frame_index=1, timestamp=0.04, faces=faces[:1]))
    kept = assigner.face_at(people, 1)
    assert gone == "Unknown #12" and kept is not None and kept["image"].shape[0] > 150
    face = assigner.face_at(people, 0)
    assert face is not None and face["name"] == "" and face["image"].shape[0] > 150
    dialog = assigner.open_dialog(**face)
    with qtbot.waitSignal(dialog.finished, timeout=JOB_TIMEOUT_MS):
        dialog.assign("Guest")
    assert dialog.result_value.ok and dialog.result_value.path.parent == demo_gallery / "Guest"
    assert people.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu


def test_person_view_picks_the_face_of_a_group_photo_already_in_the_folder(
    qtbot, panel, demo_gallery: Path
) -> None:
    widget, controller = panel
    view = widget.open_person("biden")
    qtbot.waitUntil(lambda: view.review is not None, timeout=JOB_TIMEOUT_MS)
    assert view.photo_names() == ["biden.jpg", "biden2.jpg"]
    assert view.table.item(1, 4).text().startswith("Not used: several faces")
    assert "Pick the face in biden2.jpg" in view.summary.text()
    view.select_photo("biden2.jpg")
    assert view.pick_button.isEnabled()
    qtbot.mouseClick(view.pick_button, Qt.MouseButton.LeftButton)
    picker = view.picker
    qtbot.waitUntil(lambda: picker.candidates is not None, timeout=JOB_TIMEOUT_MS)
    picker.choose(0)  # the largest face: Biden's
    picker.use_choice()
    # The view reviews the photos again by itself: the group photo is in use, agreeing with the other.
    qtbot.waitUntil(lambda: view.table.item(1, 4).text() == "In use", timeout=JOB_TIMEOUT_MS)
    assert float(view.table.item(1, 3).text()) > 0.36
    assert read_choice(demo_gallery / "biden" / "biden2.jpg") is not None  # in place, not a copy
    assert sorted(p.name for p in (demo_gallery / "biden").iterdir()) == [
        "biden.jpg",
        "biden2.jpg",
        "biden2.jpg.face.json",
    ]
    view.close()
    _idle(qtbot, controller)


def test_the_window_offers_assign_on_live_events_and_history(
    qtbot, hamilton_clip: Path, hamilton_gallery: Path
) -> None:
    from app.context import AppContext
    from app.main_window import MainWindow

    settings = Settings().replace(camera={"source": str(hamilton_clip)}, gallery_dir=str(hamilton_gallery))
    window = MainWindow(AppContext.build(settings, system_trash=False), autostart=True)
    qtbot.addWidget(window)
    window.show()
    assigner = window.dialogs.assigner
    events = window.live.events_panel
    qtbot.waitUntil(
        lambda: any(events.row_text(r)[0] == "Lin-Manuel Miranda" for r in range(events.row_count())),
        timeout=JOB_TIMEOUT_MS,
    )
    window.live.people.refresh()
    qtbot.waitUntil(lambda: window.live.people.topLevelItemCount() > 0, timeout=5000)
    qtbot.waitUntil(lambda: assigner.face_at(window.live.people, 0) is not None, timeout=5000)
    assert assigner.face_at(window.live.people, 0)["image"].ndim == 3
    assert assigner.face_at(events.table, 0)["jpeg"][:2] == b"\xff\xd8"
    window.controller.stop()

    history = window.open_history()
    qtbot.waitUntil(
        lambda: (history.reload(), any(e.person == "Lin-Manuel Miranda" for e in history.events))[1],
        timeout=10_000,
    )
    # Lin-Manuel Miranda's sightings, the largest first, assigned to him from the History window. His
    # face in this clip is 38-44 px wide, around the 40 px a gallery photo needs: each sighting is either
    # added as a new photo of him, or refused with the reason (and nothing saved).
    events = history.events
    rows = [r for r in range(len(events)) if events[r].person == "Lin-Manuel Miranda"]
    rows.sort(key=lambda r: events[r].box[0] - events[r].box[2])
    folder = hamilton_gallery / "Lin-Manuel Miranda"
    added = None
    for row in rows:
        face = assigner.face_at(history.table, row)
        assert face is not None and face["jpeg"] == events[row].thumbnail
        assert face["name"] == "Lin-Manuel Miranda"  # the dialog suggests the person recognized
        dialog = assigner.open_dialog(**face)
        dialog.assign()
        qtbot.waitUntil(lambda d=dialog: d.result_value is not None, timeout=JOB_TIMEOUT_MS)
        verdict = dialog.result_value
        assert isinstance(verdict, PhotoResult), verdict  # a verdict, not a failure
        if verdict.ok:
            added = verdict.path
            break
        assert verdict.status in (PhotoStatus.LOW_QUALITY, PhotoStatus.NO_FACE)
        assert dialog.isVisible() and dialog.message.text() == f"Not added: {verdict.message}"
        assert len(list(folder.iterdir())) == 1
        dialog.reject()
    photos = sorted(p.name for p in folder.iterdir())
    assert photos == (sorted([added.name, "lin-manuel-miranda.png"]) if added else ["lin-manuel-miranda.png"])
    history.close()
    window.close()


def test_a_photo_and_its_picked_face_go_to_the_system_trash_together(
    qtbot, demo_gallery: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.gallery_worker import move_photo_to_trash
    from core.detection import create_detector
    from core.embedding import create_embedder
    from core.face_choice import sidecar_path
    from core.gallery import Gallery

    (tmp_path / "xdg-data").mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    gallery = Gallery(
        demo_gallery, create_embedder("sface"), create_detector("yunet"), tmp_path / "cache.sqlite3"
    )
    group = demo_gallery / "biden" / "biden2.jpg"
    _image, faces = gallery.detect_photo(group)
    assert gallery.choose_face("biden", group, tuple(faces[0].box[:4])).ok
    data = group.read_bytes()
    removed = move_photo_to_trash(gallery, group)
    assert removed.in_system_trash and str(tmp_path / "xdg-data") in str(removed.location)
    assert removed.location.read_bytes() == data
    assert not group.exists() and not sidecar_path(group).exists()
    trashed = {p.name for p in removed.location.parent.iterdir()}
    assert {"biden2.jpg", "biden2.jpg.face.json"} <= trashed
    assert {p.name: p.embedded for p in gallery.people()}["biden"] == 1
    gallery.close()


def test_a_closed_person_view_no_longer_hears_the_gallery_jobs(qtbot, panel) -> None:
    _widget, controller = panel
    view = PersonView(controller, "obama", confirm=False)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.review is not None, timeout=JOB_TIMEOUT_MS)
    first = view.review
    view.done(0)
    view.done(0)  # a second close is harmless
    view.refresh()  # the job still runs in the worker; the closed view does not take its result
    _idle(qtbot, controller)
    qtbot.wait(50)
    assert view.review is first
