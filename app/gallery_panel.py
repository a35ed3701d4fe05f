"""The Gallery tab: people with their face and photo count; add, rename, delete, add photos, enrol.

A person's photos are reviewed in :class:`app.person_view.PersonView` (double-click a person), and the
face of a group photo is picked in :class:`app.face_picker.FacePickerDialog`.

Every change runs as a job of :class:`app.gallery_worker.GalleryController` (its own thread), with a
progress bar and Cancel; the panel only lists, asks and reports.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QToolBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.face_picker import FacePickerDialog
from app.gallery_worker import (
    AddImages,
    AddPerson,
    AddPhotos,
    GalleryController,
    GalleryJobResult,
    RemovedPerson,
    RenamePerson,
    SyncGallery,
)
from app.icons import icon
from app.person_view import PersonView
from app.user_dirs import display_path, start_folder
from core.engine import gallery_root
from core.gallery import PhotoStatus
from core.settings import Settings

__all__ = ["GalleryPanel", "THUMBNAIL_PX"]

log = logging.getLogger(__name__)

THUMBNAIL_PX = 96
# Jobs whose progress the Cancel button can stop (the others are one quick step).
_CANCELLABLE = frozenset(job.kind for job in (AddPhotos, SyncGallery, AddImages) if job.cancellable)
_IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp);;All files (*)"


def _face_icon(face_jpeg: bytes) -> QIcon:
    """The face of the person's first photo in use, cut out by the gallery worker (none until it is)."""
    pixmap = QPixmap()
    return QIcon(pixmap) if face_jpeg and pixmap.loadFromData(face_jpeg, "JPG") else QIcon()


class GalleryPanel(QWidget):
    """The people of the gallery and what can be done to them.

    Signals:
        enroll_requested(str): the user asked to enrol the named person (may be "") from the camera.
    """

    enroll_requested = Signal(str)

    def __init__(
        self, controller: GalleryController, settings: Settings, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("GalleryPanel")
        self._controller = controller
        self._settings = settings
        self._people: list[Any] = []
        self._confirm = True
        self.last_result: GalleryJobResult | None = None
        self.last_error: BaseException | None = None
        self.last_removed: RemovedPerson | None = None
        self.person_view: PersonView | None = None
        self.face_picker: FacePickerDialog | None = None
        #: After adding photos, open the face picker for each group photo among them.
        self.pick_faces_after_adding = True
        self._to_pick: list[tuple[str, str]] = []

        self._build_people_list()
        self._build_toolbar()
        self._build_status()
        self._lay_out()
        controller.people_ready.connect(self._on_people)
        controller.progress.connect(self._on_progress)
        controller.job_started.connect(self._on_job_started)
        controller.job_finished.connect(self._on_job_finished)
        controller.error.connect(self._on_error)
        controller.busy_changed.connect(self._on_busy)
        self._update_folder_label()
        self._update_buttons()

    def _build_people_list(self) -> None:
        self.people_list = QListWidget()
        self.people_list.setObjectName("PeopleList")
        self.people_list.setViewMode(QListView.ViewMode.IconMode)
        self.people_list.setIconSize(QSize(THUMBNAIL_PX, THUMBNAIL_PX))
        self.people_list.setGridSize(QSize(THUMBNAIL_PX + 48, THUMBNAIL_PX + 44))
        self.people_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.people_list.setMovement(QListView.Movement.Static)
        self.people_list.setWordWrap(True)
        self.people_list.setToolTip("Everyone in the gallery folder, with how many photos each has")
        self.people_list.itemSelectionChanged.connect(self._update_buttons)
        self.people_list.itemDoubleClicked.connect(lambda _item: self.open_person())

        self.empty_label = QLabel(
            "The gallery is empty. Add a person, then add photos of them (one face per photo) or enrol them "
            "from the camera."
        )
        self.empty_label.setObjectName("EmptyMessage")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

    def _build_toolbar(self) -> None:
        # A tool bar, not a row of buttons: on a narrow window the last actions fold into its ">>" menu.
        self.toolbar = QToolBar()
        self.toolbar.setObjectName("GalleryToolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)

        def button(text: str, icon_name: str, tip: str, slot: Any) -> QAction:
            act = QAction(icon(icon_name), text, self)
            act.setToolTip(tip)
            act.triggered.connect(lambda _checked=False: slot())
            self.toolbar.addAction(act)
            return act

        self.add_button = button("Add person…", "person-add", "Create a new, empty person", self.add_person)
        self.photos_button = button(
            "Add photos…", "photos", "Enrol photos from files (several at once)", self.add_photos
        )
        self.person_button = button(
            "Photos…",
            "photos",
            "Review the selected person's photos: faces, quality, wrong photos",
            self.open_person,
        )
        self.enroll_button = button(
            "Enrol from camera…", "camera", "Take good shots of the person with the camera", self._enroll
        )
        self.rename_button = button("Rename…", "rename", "Rename the selected person", self.rename_person)
        self.delete_button = button(
            "Delete…",
            "trash",
            "Move the selected person's photos to the trash (recoverable)",
            self.delete_person,
        )
        self.reembed_button = button(
            "Re-embed",
            "refresh",
            "Embed every photo again with the current model",
            lambda: self._controller.submit(SyncGallery()),
        )
        self.toolbar.addSeparator()
        self.folder_button = button(
            "Open folder", "folder", "Open the gallery folder in the file manager", self.open_folder
        )

    def _build_status(self) -> None:
        self.folder_label = QLabel()
        self.folder_label.setObjectName("GalleryFolder")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.progress = QProgressBar()
        self.progress.setObjectName("GalleryProgress")
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current photo; photos already added stay")
        self.cancel_button.clicked.connect(self._controller.cancel)
        self.cancel_button.hide()
        self.status = QLabel()
        self.status.setObjectName("GalleryStatus")
        self.status.setWordWrap(True)

        self.report = QTreeWidget()
        self.report.setObjectName("EnrolReport")
        self.report.setHeaderLabels(["Photo", "Result"])
        self.report.setRootIsDecorated(False)
        self.report.setToolTip(
            "What happened to each photo of the last job; double-click a group photo to pick the face"
        )
        self.report.itemDoubleClicked.connect(lambda item, _col: self._pick_from_report(item))

    def _lay_out(self) -> None:
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.folder_label)
        top_layout.addWidget(self.people_list, 1)
        top_layout.addWidget(self.empty_label)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.report)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(self.toolbar)
        layout.addWidget(splitter, 1)
        layout.addLayout(progress_row)
        layout.addWidget(self.status)

    # -- state ------------------------------------------------------------------------------------
    def set_settings(self, settings: Settings) -> None:
        """Use new settings and show the gallery folder they point to."""
        self._settings = settings
        self._update_folder_label()

    def set_confirm(self, confirm: bool) -> None:
        """Ask before deleting (tests and scripted use turn it off)."""
        self._confirm = confirm

    def refresh(self) -> None:
        """Reload the list of people from the gallery."""
        self._controller.refresh()

    def shutdown(self) -> None:
        """Cancel the gallery work still running."""
        self._controller.cancel()

    @property
    def people(self) -> list[Any]:
        """A copy of the people currently listed."""
        return list(self._people)

    def selected_name(self) -> str | None:
        """The name of the selected person, or None when nobody is selected."""
        items = self.people_list.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def select(self, name: str) -> None:
        """Select ``name`` in the list, clearing every other selection."""
        for i in range(self.people_list.count()):
            item = self.people_list.item(i)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) == name)

    def _update_folder_label(self) -> None:
        self.folder_label.setText(f"Gallery folder: {display_path(gallery_root(self._settings))}")

    def _update_buttons(self) -> None:
        has = self.selected_name() is not None
        busy = self._controller.pending > 0
        for b in (self.rename_button, self.delete_button):
            b.setEnabled(has and not busy)
        self.person_button.setEnabled(has)
        self.photos_button.setEnabled(not busy)
        self.reembed_button.setEnabled(not busy)

    # -- actions ----------------------------------------------------------------------------------
    def add_person(self, name: str | None = None) -> None:
        """Add a person, asking for the name when ``name`` is None."""
        if name is None:
            name, ok = QInputDialog.getText(self, "Add a person", "Name:")
            if not ok or not name.strip():
                return
        self._controller.submit(AddPerson(name.strip()))

    def rename_person(self, new: str | None = None) -> None:
        """Rename the selected person, asking for the new name when ``new`` is None."""
        old = self.selected_name()
        if old is None:
            return
        if new is None:
            new, ok = QInputDialog.getText(self, "Rename", f"New name for {old}:", text=old)
            if not ok or not new.strip() or new.strip() == old:
                return
        self._controller.submit(RenamePerson(old, new.strip()))

    def delete_person(self, name: str | None = None) -> None:
        """Delete a person (the selected one by default), after confirming if confirmation is on.

        Their photos go to the trash rather than being destroyed.
        """
        name = name or self.selected_name()
        if name is None:
            return
        if self._confirm:
            answer = QMessageBox.question(
                self,
                "Delete person",
                f"Delete {name} from the gallery?\nTheir photos are moved to the trash, not destroyed.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._controller.delete(name)

    def add_photos(self, paths: list[str] | None = None, name: str | None = None) -> None:
        """Add photos to a person, asking for whichever of the name and the files is not given."""
        name = name or self.selected_name()
        if name is None:
            name, ok = QInputDialog.getText(self, "Add photos", "Whose photos are they? Name:")
            if not ok or not name.strip():
                return
        if paths is None:
            paths, _ = QFileDialog.getOpenFileNames(self, f"Photos of {name}", start_folder(), _IMAGE_FILTER)
            if not paths:
                return
        self._controller.submit(AddPhotos(name.strip(), tuple(str(p) for p in paths)))

    def open_person(self, name: str | None = None) -> PersonView | None:
        """Open the review of a person's photos (the selected person by default)."""
        name = name or self.selected_name()
        if name is None:
            return None
        view = PersonView(self._controller, name, self, confirm=self._confirm)
        view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        view.open()
        self.person_view = view
        return view

    def pick_face(self, name: str, path: str) -> FacePickerDialog:
        """Open the face picker for a photo of ``name`` (a group photo)."""
        picker = FacePickerDialog(self._controller, name, path, self)
        picker.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        picker.finished.connect(lambda _r: self._next_pick())
        picker.open()
        self.face_picker = picker
        return picker

    def _next_pick(self) -> None:
        self.face_picker = None
        if self._to_pick:
            self.pick_face(*self._to_pick.pop(0))

    def _pick_from_report(self, item: QTreeWidgetItem) -> None:
        target = item.data(0, Qt.ItemDataRole.UserRole)
        if target:
            self.pick_face(*target)

    def _enroll(self) -> None:
        self.enroll_requested.emit(self.selected_name() or "")

    def open_folder(self) -> None:
        """Open the gallery folder in the system file manager, creating it first if needed."""
        root = gallery_root(self._settings)
        root.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(root)))

    # -- controller signals -----------------------------------------------------------------------
    def _on_people(self, people: list[Any]) -> None:
        selected = self.selected_name()
        self._people = list(people)
        self.people_list.clear()
        for person in people:
            # Only photos in use count: one with no face or several is not a photo of the person.
            n, unused = person.embedded, len(person.photos) - person.embedded
            item = QListWidgetItem(
                _face_icon(person.face_jpeg),
                f"{person.name}\n{n} photo{'s' if n != 1 else ''}",
            )
            item.setData(Qt.ItemDataRole.UserRole, person.name)
            tip = f"{person.name}: {n} photo{'s' if n != 1 else ''} in use"
            if unused:
                tip += f", {unused} not used (double-click to see why)"
            item.setToolTip(f"{tip}\n{person.path}")
            self.people_list.addItem(item)
            if person.name == selected:
                item.setSelected(True)
        self.empty_label.setVisible(not people)
        self._update_buttons()

    def _on_progress(self, done: int, total: int, item: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"%v / %m  {item}")

    def _on_job_started(self, kind: str) -> None:
        labels = {
            "add_photos": "Adding photos…",
            "sync": "Embedding the gallery…",
            "add_images": "Saving camera shots…",
            "settings": "Loading the models…",
        }
        if kind in labels:
            self.status.setText(labels[kind])
            self.progress.setRange(0, 0)
            self.progress.show()
            self.cancel_button.setVisible(kind in _CANCELLABLE)

    def _on_busy(self, busy: bool) -> None:
        if not busy:
            self.progress.hide()
            self.cancel_button.hide()
        self._update_buttons()

    def _on_job_finished(self, result: GalleryJobResult) -> None:
        self.last_result = result
        value = result.value
        kind = result.kind
        if kind == "add_photos":
            self._show_report(value.results)
            self._offer_picks(value)
            added, bad = value.added, len(value.problems)
            text = f"{value.person}: {added} photo{'s' if added != 1 else ''} added"
            if bad:
                text += f", {bad} not used (see the list below)"
            if value.cancelled:
                text += "; cancelled"
            self.status.setText(text + ".")
        elif kind == "add_images":
            self._show_report(value)
            self.status.setText(f"{sum(1 for r in value if r.ok)} camera shots added.")
        elif kind == "sync" and value is not None:
            text = f"{value.usable} of {value.photos} photos usable ({value.embedded} embedded now, {value.cached} cached)"
            if value.cancelled:
                text += "; cancelled, the previous embeddings stay in use"
            self.status.setText(text + ".")
            self._show_report(value.problems)
        elif kind == "delete":
            self.last_removed = value
            where = "the system trash" if value.in_system_trash else "the backup folder"
            self.status.setText(f"{value.name} moved to {where}: {value.location}")
        elif kind == "rename":
            self.status.setText(f"Renamed to {value.name}.")
            self.select(value.name)
        elif kind == "add_person":
            self.status.setText(f"{value.name} added. Now add photos of them.")
            self.select(value.name)

    def _offer_picks(self, report: Any) -> None:
        """Queue the face picker for each group photo just added (one dialog after the other)."""
        group = [
            (report.person, str(r.path)) for r in report.results if r.status is PhotoStatus.SEVERAL_FACES
        ]
        if not group or not self.pick_faces_after_adding:
            return
        self._to_pick.extend(group)
        if self.face_picker is None:
            self._next_pick()

    def _show_report(self, results: Any) -> None:
        self.report.clear()
        for r in results:
            item = QTreeWidgetItem([Path(r.path).name, r.message or str(r.status)])
            item.setToolTip(0, str(r.path))
            if r.status in (PhotoStatus.SEVERAL_FACES, PhotoStatus.CHOICE_LOST):
                item.setData(0, Qt.ItemDataRole.UserRole, (r.person, str(r.path)))
            if not r.ok:
                item.setForeground(1, QBrush(QColor("#ff7b72")))
            self.report.addTopLevelItem(item)
        self.report.resizeColumnToContents(0)

    def _on_error(self, exc: BaseException) -> None:
        self.last_error = exc
        self.status.setText(f"Error: {exc}")
        log.warning("gallery: %s", exc)
