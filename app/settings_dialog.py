"""The settings dialog: every field of :class:`core.settings.Settings`, applied live to the running pipeline.

The dialog snapshots the live settings when it opens. Every edit emits :attr:`SettingsDialog.settings_changed`
with a new immutable snapshot once a value is committed (Enter, focus out, a step, a slider release: a
number half typed or a slider mid-drag is never applied), debounced; OK saves, Cancel re-applies the
snapshot from the opening, Restore defaults asks first.
Tooltips are the pydantic field descriptions, so the model is the one place a setting is documented.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.field_text import UI_RANGES, field_label, unit_of
from app.model_choices import ModelChoice, ModelKind, install_model_file, model_choice, model_choices
from app.themes import THEMES
from app.user_dirs import start_folder
from core.embedding import parse_spec
from core.errors import GhostFaceError
from core.modelstore import ModelStore, default_store
from core.settings import Settings

__all__ = ["SettingsDialog", "available_devices", "field_bounds"]

log = logging.getLogger(__name__)

# Sections shown, in order, with their tab titles. Plugin settings have their own dialog.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("detection", "Detection"),
    ("recognition", "Recognition"),
    ("camera", "Camera"),
    ("tracking", "Tracking"),
    ("display", "Display"),
    ("events", "Events"),
    ("ui", "Appearance"),
)
# The settings fields that name a model, and which list each one is.
MODEL_FIELDS: dict[tuple[str, str], ModelKind] = {
    ("detection", "detector"): ModelKind.DETECTOR,
    ("recognition", "embedder"): ModelKind.EMBEDDER,
}
# Milliseconds an edit must rest before it is applied to the pipeline.
DEBOUNCE_MS = 80
# Float fields whose whole range fits a slider (thresholds); others get a spin box only.
_SLIDER_STEPS = 100


def field_bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    """The ``ge``/``le`` bounds pydantic keeps in a field's metadata."""
    lo = hi = None
    for meta in info.metadata:
        if getattr(meta, "ge", None) is not None:
            lo = meta.ge
        if getattr(meta, "le", None) is not None:
            hi = meta.le
    return lo, hi


def available_devices(current: str = "cpu") -> list[str]:
    """``cpu``, every CUDA device torch sees, and the current choice.

    The list comes from the diagnostics probe (a background thread): importing torch here would
    freeze the dialog for seconds. Before the probe ends, ``cpu`` and the current device are offered.
    """
    from app.diagnostics import known_devices, start_runtime_probe

    devices = known_devices()
    if devices is None:
        start_runtime_probe()
        devices = ["cpu"]
    if current and current not in devices:
        devices.append(current)
    return devices


def _show_unit(editor: QWidget, unit: str) -> None:
    """Put ``unit`` after the number of ``editor`` (a spin box, or a widget holding one)."""
    if not unit:
        return
    spin = editor if isinstance(editor, QAbstractSpinBox) else editor.findChild(QAbstractSpinBox)
    if isinstance(spin, QSpinBox | QDoubleSpinBox):
        spin.setSuffix(f" {unit}")


class _FloatEdit(QWidget):
    """A spin box, with a slider beside it when the range is a threshold's.

    ``valueChanged`` fires only for a committed value: Enter, focus out, an arrow key or spin step, a
    slider release or a slider key. A number being typed passes through others (``0`` and ``0.`` on the
    way to ``0.45``) and a drag through many; applying those would, for a moment, recognize strangers.
    """

    valueChanged = Signal(float)  # noqa: N815 - Qt naming

    def __init__(self, lo: float, hi: float, decimals: int, slider: bool) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(lo, hi)
        self.spin.setDecimals(decimals)
        self.spin.setSingleStep(10 ** (-decimals) if slider else max((hi - lo) / 100, 0.1))
        self.spin.setKeyboardTracking(False)
        self._scale = 10**decimals
        self.slider: QSlider | None = None
        if slider:
            self.slider = QSlider(Qt.Orientation.Horizontal)
            self.slider.setRange(round(lo * self._scale), round(hi * self._scale))
            # Without tracking, valueChanged comes on release (and on the slider's own keys) only;
            # while dragging, the spin box shows the position without applying it.
            self.slider.setTracking(False)
            self.slider.sliderMoved.connect(self._preview)
            self.slider.valueChanged.connect(self._slider_committed)
            layout.addWidget(self.slider, 1)
        self.spin.valueChanged.connect(self._spin_changed)
        layout.addWidget(self.spin)
        self._committed = float(self.spin.value())

    def _preview(self, position: int) -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(position / self._scale)
        self.spin.blockSignals(False)

    def _slider_committed(self, position: int) -> None:
        # The spin box may already show this value (the drag previewed it), so commit explicitly.
        self._preview(position)
        self._commit(float(self.spin.value()))

    def _spin_changed(self, value: float) -> None:
        if self.slider is not None:
            self.slider.blockSignals(True)
            self.slider.setValue(round(value * self._scale))
            self.slider.blockSignals(False)
        self._commit(float(value))

    def _commit(self, value: float) -> None:
        if value != self._committed:
            self._committed = value
            self.valueChanged.emit(value)

    def value(self) -> float:
        """The committed value (a number still being typed, or a slider being dragged, is not one)."""
        return self._committed

    def setValue(self, value: float) -> None:  # noqa: N802 - Qt naming
        """Show ``value`` in the spin box and the slider, as committed."""
        self.spin.setValue(value)
        # A value equal to the shown one emits nothing from the spin box, but is committed all the same.
        self._committed = float(self.spin.value())


class SettingsDialog(QDialog):
    """Edit the settings of the running application, live.

    Args:
        settings: the live settings when the dialog opens (the Cancel snapshot).
        parent: the main window.
        save: called with the final settings on OK (the main window persists them).
        devices: the devices to offer; None asks :func:`available_devices`.
        cameras: the camera indexes found (the dialog never probes devices itself).
        store: where model files are looked for; None means :func:`core.modelstore.default_store`.

    A model whose file is missing is marked in its list and offers "Locate file…"; it is never
    applied live nor saved: the last working choice stays, and the dialog says why.

    Signals:
        settings_changed(Settings): a new snapshot to make live now.
    """

    settings_changed = Signal(object)

    def __init__(
        self,
        settings: Settings,
        parent: QWidget | None = None,
        *,
        save: Callable[[Settings], None] | None = None,
        devices: Sequence[str] | None = None,
        cameras: Sequence[str] = (),
        store: ModelStore | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("SettingsDialog")
        self._original = settings
        self._current = settings
        self._save = save
        self._cameras = list(cameras)
        self._devices = (
            list(devices) if devices is not None else available_devices(settings.recognition.device)
        )
        self._store = store if store is not None else default_store()
        self._model_combos: dict[ModelKind, QComboBox] = {}
        self._locate_buttons: dict[ModelKind, QPushButton] = {}
        # Specs chosen through "Locate file…", kept in the list once located.
        self._located: dict[ModelKind, list[str]] = {kind: [] for kind in ModelKind}
        # Models the pipeline failed to load (spec -> why): marked, and never applied again.
        self._failed: dict[str, str] = {}
        self._working = self._working_models(settings)
        self._setters: dict[tuple[str, str], Callable[[Any], None]] = {}
        self._getters: dict[tuple[str, str], Callable[[], Any]] = {}
        self._loading = False
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._emit_now)

        self.tabs = self._build_tabs()
        self.error_label = self._build_error_label()
        self.buttons = self._build_buttons()
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self._load(settings)
        self._link_threshold_to_model()
        if devices is None:
            self._poll_devices()

    def _build_tabs(self) -> QTabWidget:
        """One tab per settings section, then the gallery and the stations pages."""
        tabs = QTabWidget()
        for section, title in SECTIONS:
            tabs.addTab(self._build_section(section), title)
        tabs.addTab(self._build_gallery_page(), "Gallery")
        tabs.addTab(self._build_store_page(), "Stations")
        tabs.setUsesScrollButtons(False)  # every tab in sight, no scroll arrows to look for
        return tabs

    def _build_error_label(self) -> QLabel:
        """The line under the tabs that says why a value was refused; hidden until then."""
        label = QLabel()
        label.setObjectName("SettingsError")
        label.setWordWrap(True)
        label.hide()
        return label

    def _link_threshold_to_model(self) -> None:
        """Grey the hand-set threshold while the model's own is used (it only applies otherwise)."""
        follow = self.findChild(QCheckBox, "recognition.threshold_from_model")
        if follow is not None:
            follow.toggled.connect(self._follow_model_threshold)
            self._follow_model_threshold(follow.isChecked())

    def _build_buttons(self) -> QDialogButtonBox:
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        restore = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.setToolTip("Put every setting back to its default value (asks first).")
        restore.clicked.connect(self.restore_defaults)
        return buttons

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt naming
        """Enter commits the number being typed (the field has done so by now); it does not press OK.

        The dialog is tuned in while the video runs: closing it on every Enter would end the tuning.
        """
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            return
        super().keyPressEvent(event)

    def _poll_devices(self) -> None:
        """Add the CUDA devices to the list once the background probe has found them."""
        from app.diagnostics import known_devices

        if known_devices() is None:
            # The device list arrives from the background probe; add the CUDA devices then.
            self._device_poll = QTimer(self)
            self._device_poll.setInterval(300)
            self._device_poll.timeout.connect(self._refresh_devices)
            self._device_poll.start()

    def _refresh_devices(self) -> None:
        from app.diagnostics import known_devices

        found = known_devices()
        if found is None:
            return
        self._device_poll.stop()
        combo = self.findChild(QComboBox, "recognition.device")
        if combo is None:
            return
        for device in found:
            if combo.findText(device) < 0:
                combo.addItem(device)

    def _follow_model_threshold(self, follow: bool) -> None:
        for name in ("recognition.similarity_threshold", "recognition.similarity_threshold.label"):
            if (widget := self.findChild(QWidget, name)) is not None:
                widget.setEnabled(not follow)

    # -- building -------------------------------------------------------------------------------
    def _choices(self, section: str, key: str) -> list[str] | None:
        if (section, key) == ("recognition", "device"):
            return self._devices
        if (section, key) == ("camera", "source"):
            return list(self._cameras)
        return None

    def _build_section(self, section: str) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        model: type[BaseModel] = Settings.model_fields[section].annotation  # type: ignore[assignment]
        for key, info in model.model_fields.items():
            ident = (section, key)
            named = ident == ("ui", "theme")
            editor = self._named_choices(ident, THEMES) if named else self._make_editor(section, key, info)
            if editor is None:
                continue
            editor.setObjectName(f"{section}.{key}")
            editor.setToolTip(info.description or "")
            _show_unit(editor, unit_of(f"{section}.{key}"))
            label = QLabel(field_label(f"{section}.{key}", info.title))
            label.setObjectName(f"{section}.{key}.label")
            label.setToolTip(info.description or "")
            label.setBuddy(editor)
            form.addRow(label, editor)
        return page

    def _make_editor(self, section: str, key: str, info: FieldInfo) -> QWidget | None:
        ident = (section, key)
        annotation = info.annotation
        if annotation is bool:
            box = QCheckBox()
            box.toggled.connect(self._changed)
            self._setters[ident] = box.setChecked
            self._getters[ident] = box.isChecked
            return box
        if annotation is int:
            lo, hi = field_bounds(info)
            spin = QSpinBox()
            spin.setRange(int(lo if lo is not None else -(2**31)), int(hi if hi is not None else 2**31 - 1))
            # Typed numbers apply on Enter, focus out or a step, never digit by digit (see _FloatEdit).
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._changed)
            self._setters[ident] = spin.setValue
            self._getters[ident] = spin.value
            return spin
        if annotation is float:
            lo, hi = UI_RANGES.get(f"{section}.{key}", field_bounds(info))
            lo_f = float(lo if lo is not None else 0.0)
            hi_f = float(hi if hi is not None else 1e6)
            slider = hi_f - lo_f <= 2.0
            edit = _FloatEdit(lo_f, hi_f, 2 if slider else 1, slider)
            edit.valueChanged.connect(self._changed)
            self._setters[ident] = edit.setValue
            self._getters[ident] = edit.value
            return edit
        if annotation is str and ident in MODEL_FIELDS:
            return self._model_editor(MODEL_FIELDS[ident], ident)
        if annotation is str:
            choices = self._choices(section, key)
            if choices is not None:
                combo = QComboBox()
                combo.setEditable(key != "device")
                combo.addItems(choices)
                if combo.isEditable():
                    # A typed source applies when committed (Enter, focus out), not letter by letter.
                    combo.activated.connect(self._changed)
                    line_edit = combo.lineEdit()
                    assert line_edit is not None
                    line_edit.editingFinished.connect(self._changed)
                else:
                    combo.currentIndexChanged.connect(self._changed)

                def set_text(value: str, combo: QComboBox = combo) -> None:
                    if combo.findText(value) < 0:
                        combo.addItem(value)
                    combo.setCurrentText(value)

                self._setters[ident] = set_text
                self._getters[ident] = combo.currentText
                if ident == ("camera", "source"):
                    return self._with_browse(combo, set_text)
                return combo
            line = QLineEdit()
            line.editingFinished.connect(self._changed)
            self._setters[ident] = line.setText
            self._getters[ident] = line.text
            return line
        return None  # dict-valued plugin settings: the plugins dialog edits them

    def _named_choices(self, ident: tuple[str, str], choices: dict[str, str]) -> QComboBox:
        """A fixed list (not editable as text) showing each value's label: ``{value: label}``."""
        combo = QComboBox()
        for value, text in choices.items():
            combo.addItem(text, value)
        combo.currentIndexChanged.connect(self._changed)

        def select(value: str, combo: QComboBox = combo) -> None:
            combo.setCurrentIndex(max(combo.findData(value), 0))

        def chosen(combo: QComboBox = combo) -> str:
            return str(combo.currentData())

        self._setters[ident] = select
        self._getters[ident] = chosen
        return combo

    # -- model lists ----------------------------------------------------------------------------
    def _model_editor(self, kind: ModelKind, ident: tuple[str, str]) -> QWidget:
        """A list of the registry's models (not editable as text) with "Locate file…" beside it."""
        combo = QComboBox()
        combo.setObjectName(f"{ident[0]}.{ident[1]}.list")
        combo.currentIndexChanged.connect(self._model_changed)
        locate = QPushButton("Locate file…")
        locate.setObjectName(f"{ident[0]}.{ident[1]}.locate")
        locate.setToolTip(f"Point to the {kind.value}'s model file on this computer.")
        locate.clicked.connect(self._locate_detector if kind is ModelKind.DETECTOR else self._locate_embedder)
        self._model_combos[kind] = combo
        self._locate_buttons[kind] = locate

        def select(spec: str, kind: ModelKind = kind) -> None:
            self._fill_models(kind, spec)

        def chosen(combo: QComboBox = combo) -> str:
            return str(combo.currentData())

        self._setters[ident] = select
        self._getters[ident] = chosen
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(combo, 1)
        row.addWidget(locate)
        return box

    def model_choice(self, kind: ModelKind, spec: str) -> ModelChoice:
        """The list entry of ``spec``: its label, and why it cannot load (None when it can)."""
        if spec in self._failed:
            label = model_choice(kind, spec, self._store).label
            return ModelChoice(spec, f"{label} (failed to load)", self._failed[spec])
        return model_choice(kind, spec, self._store)

    def _working_models(self, settings: Settings) -> dict[ModelKind, str]:
        """The models to fall back on: those in use, or the first installed one if that one is missing."""
        working: dict[ModelKind, str] = {}
        for (section, key), kind in MODEL_FIELDS.items():
            spec = getattr(getattr(settings, section), key)
            if model_choice(kind, spec, self._store).problem is not None:
                loadable = [c.spec for c in model_choices(kind, self._store) if c.problem is None]
                spec = loadable[0] if loadable else spec
            working[kind] = spec
        return working

    def _fill_models(self, kind: ModelKind, selected: str) -> None:
        """List the registry's models, the located and the selected one, each marked if it cannot load."""
        combo = self._model_combos[kind]
        specs = [c.spec for c in model_choices(kind, self._store)]
        for extra in (*self._located[kind], self._working[kind], selected):
            if extra and extra not in specs:
                specs.append(extra)
        combo.blockSignals(True)
        try:
            combo.clear()
            for index, spec in enumerate(specs):
                choice = self.model_choice(kind, spec)
                combo.addItem(choice.label, spec)
                combo.setItemData(index, choice.problem or spec, Qt.ItemDataRole.ToolTipRole)
            combo.setCurrentIndex(specs.index(selected) if selected in specs else 0)
        finally:
            combo.blockSignals(False)
        self._show_locate(kind)

    def _show_locate(self, kind: ModelKind) -> None:
        combo = self._model_combos[kind]
        problem = self.model_choice(kind, str(combo.currentData())).problem
        # Offered first where the file is missing; an embedder may always take another checkpoint.
        self._locate_buttons[kind].setEnabled(problem is not None or kind is ModelKind.EMBEDDER)

    def _model_changed(self, *_: Any) -> None:
        for kind in self._model_combos:
            self._show_locate(kind)
        self._changed()

    def _pick_model_file(self, kind: ModelKind) -> Path | None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            f"Locate the {kind.value} model file",
            str(Path.home()),
            "Model files (*.onnx *.pt *.pth);;All files (*)",
        )
        return Path(path) if path else None

    def _locate_detector(self) -> None:
        """Check the chosen file is the detector's model, then install it where the model store looks."""
        name = str(self._model_combos[ModelKind.DETECTOR].currentData())
        path = self._pick_model_file(ModelKind.DETECTOR)
        if path is None:
            return
        try:
            install_model_file(name, path, self._store)
        except (GhostFaceError, OSError) as exc:
            self._show_error(f"The file was not used: {exc}")
            return
        self._use_located(ModelKind.DETECTOR, name)

    def _locate_embedder(self) -> None:
        """Use the chosen file as the embedder's weights (the ``<name>:<path>`` spec)."""
        current = str(self._model_combos[ModelKind.EMBEDDER].currentData())
        path = self._pick_model_file(ModelKind.EMBEDDER)
        if path is None:
            return
        try:
            name, _ = parse_spec(current)
        except GhostFaceError as exc:
            self._show_error(f"The file was not used: {exc}")
            return
        spec = f"{name}:{path}"
        if spec not in self._located[ModelKind.EMBEDDER]:
            self._located[ModelKind.EMBEDDER].append(spec)
        self._use_located(ModelKind.EMBEDDER, spec)

    def _use_located(self, kind: ModelKind, spec: str) -> None:
        # A located file is a new chance: a failure of the file it replaces says nothing about it.
        self._failed.pop(spec, None)
        self._fill_models(kind, spec)
        self._changed()

    def model_failed(self, error: BaseException) -> None:
        """The pipeline could not load a model this dialog applied: take it back and say why.

        The models applied since the dialog opened that differ from the working ones are marked as
        failed (never applied or saved again), and the working ones are applied again.
        """
        reverted: list[str] = []
        for (section, key), kind in MODEL_FIELDS.items():
            applied = getattr(getattr(self._current, section), key)
            if applied == self._working[kind]:
                continue
            label = self.model_choice(kind, applied).label
            self._failed[applied] = f"{label} could not be loaded: {error}"
            # Kept in the list, marked, so the user sees what was tried and why it is not in use.
            if applied not in self._located[kind]:
                self._located[kind].append(applied)
            self._fill_models(kind, self._working[kind])
            working = self.model_choice(kind, self._working[kind]).label
            reverted.append(f"{label} could not be loaded ({error}); the {kind.value} stays {working}.")
        if not reverted:
            return
        self._debounce.stop()
        self._emit_now()
        self._show_error(" ".join(reverted))

    def _loadable(self, settings: Settings) -> tuple[Settings, dict[ModelKind, str]]:
        """``settings`` with each model that cannot load replaced by the working one, and why."""
        problems: dict[ModelKind, str] = {}
        changes: dict[str, dict[str, str]] = {}
        for (section, key), kind in MODEL_FIELDS.items():
            choice = self.model_choice(kind, getattr(getattr(settings, section), key))
            if choice.problem is None:
                continue
            working = self._working[kind]
            problems[kind] = (
                f"{choice.problem} The {kind.value} stays {self.model_choice(kind, working).label}."
            )
            changes[section] = {key: working}
        return (settings.replace(**changes) if changes else settings), problems

    def _show_error(self, text: str) -> None:
        log.info("settings: %s", text)
        self.error_label.setText(text)
        self.error_label.show()

    def _with_browse(self, combo: QComboBox, set_text: Callable[[str], None]) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        # A long path is elided in the list, not a reason for the dialog to outgrow a small screen.
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(24)
        row.addWidget(combo, 1)
        browse = QPushButton("Video…")
        browse.setToolTip("Choose a video file as the source.")

        def pick() -> None:
            filters = "Videos (*.mp4 *.avi *.mkv *.mov *.webm);;All files (*)"
            folder = start_folder(combo.currentText(), kind="videos")
            path, _ = QFileDialog.getOpenFileName(self, "Open video", folder, filters)
            if path:
                set_text(path)

        browse.clicked.connect(pick)
        row.addWidget(browse)
        box.setToolTip(combo.toolTip())
        return box

    def _build_gallery_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        info = Settings.model_fields["gallery_dir"]
        line = QLineEdit()
        line.setObjectName("gallery_dir")
        line.setPlaceholderText("(default folder)")
        line.setToolTip(info.description or "")
        line.editingFinished.connect(self._changed)
        browse = QPushButton("Browse…")

        def pick() -> None:
            path = QFileDialog.getExistingDirectory(self, "Gallery folder", start_folder(line.text()))
            if path:
                line.setText(path)
                self._changed()

        browse.clicked.connect(pick)
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(line, 1)
        lay.addWidget(browse)
        label = QLabel(info.title or "Gallery folder")
        label.setToolTip(info.description or "")
        form.addRow(label, row)
        self._setters[("", "gallery_dir")] = line.setText
        self._getters[("", "gallery_dir")] = line.text
        return page

    def _build_store_page(self) -> QWidget:
        from app.store_page import StorePage
        from core.engine import gallery_root

        self.store_page = page = StorePage(self._changed, lambda: gallery_root(self.current_settings()))
        self._setters.update({("store", "backend"): page.set_backend, ("store", "url"): page.url.setText})
        self._setters[("store", "station")] = page.station.setText
        self._getters.update(
            {("store", "backend"): page.backend, ("store", "url"): lambda: page.url.text().strip()}
        )
        self._getters[("store", "station")] = lambda: page.station.text().strip()
        return page

    # -- values ---------------------------------------------------------------------------------
    def _load(self, settings: Settings) -> None:
        self._loading = True
        try:
            for (section, key), setter in self._setters.items():
                value = getattr(getattr(settings, section), key) if section else getattr(settings, key)
                setter(value)
        finally:
            self._loading = False
        self._current = settings

    def editor(self, name: str) -> QWidget:
        """The editor widget of ``"section.key"`` (for tests and for focusing a field)."""
        widget = self.findChild(QWidget, name)
        if widget is None:
            raise KeyError(name)
        return widget

    def set_value(self, name: str, value: Any) -> None:
        """Set a field as if the user had edited it: ``set_value("recognition.margin", 0.1)``."""
        section, _, key = name.rpartition(".")
        self._setters[(section, key)](value)
        self._changed()

    def current_settings(self) -> Settings:
        """The settings the editors show now, validated."""
        data = self._current.model_dump()
        for (section, key), getter in self._getters.items():
            if section:
                data[section][key] = getter()
            else:
                data[key] = getter()
        return Settings.model_validate(data)

    def _changed(self, *_: Any) -> None:
        if not self._loading:
            self._debounce.start()

    def _emit_now(self) -> None:
        try:
            settings = self.current_settings()
        except ValueError as exc:
            # pydantic's ValidationError is one: the editor keeps the bad value, the pipeline the old one.
            self._show_error(f"Not applied: {exc}")
            return
        settings, problems = self._loadable(settings)
        if problems:
            # The pipeline keeps the working model; the list keeps the choice, marked.
            self._show_error("Not applied: " + " ".join(problems.values()))
        else:
            self.error_label.hide()
        if settings != self._current:
            self._current = settings
            self.settings_changed.emit(settings)

    def flush(self) -> None:
        """Apply a pending (debounced) edit now."""
        if self._debounce.isActive():
            self._debounce.stop()
            self._emit_now()

    # -- buttons --------------------------------------------------------------------------------
    def restore_defaults(self, *, ask: bool = True) -> None:
        """Put every setting back to its default, keeping the source and the gallery folder.

        Args:
            ask: confirm with the user first.
        """
        if ask:
            answer = QMessageBox.question(
                self,
                "Restore defaults",
                "Put every setting back to its default value?\nCancel still returns to the settings from before.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        defaults = Settings()
        # The source and gallery are the user's data, not preferences: keep them.
        defaults = defaults.replace(
            camera={"source": self._current.camera.source}, gallery_dir=self._current.gallery_dir
        )
        self._load(self._original)  # so that _current starts from a known value
        self._load(defaults)
        self._current = self._original
        self._emit_now()

    def accept(self) -> None:
        """OK: commit a number still being typed, then save, unless a chosen model cannot load."""
        # OK is a commit too: a number typed into a field that never lost the focus is not lost.
        for spin in self.findChildren(QAbstractSpinBox):
            spin.interpretText()
        self.flush()
        try:
            final = self.current_settings()
        except ValueError as exc:
            self._show_error(f"Cannot save: {exc}")
            return
        final, problems = self._loadable(final)
        if problems:
            # Never saved: the lists go back to the working models, and the dialog stays open to say why.
            for kind in problems:
                self._fill_models(kind, self._working[kind])
            self._show_error(
                "Not saved: " + " ".join(problems.values()) + " Press OK again to save the other settings."
            )
            return
        if final != self._current:
            self._current = final
            self.settings_changed.emit(final)
        if self._save is not None:
            self._save(final)
        super().accept()

    def reject(self) -> None:
        """Cancel: go back to the settings from before the dialog opened, telling the app if they changed."""
        self._debounce.stop()
        if self._current != self._original:
            self._current = self._original
            self.settings_changed.emit(self._original)
        super().reject()

    @property
    def original(self) -> Settings:
        """The settings the dialog opened with."""
        return self._original
