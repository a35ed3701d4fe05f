"""The Plugins window: every plugin with its origin, switch, health and settings, and a test button.

Health comes from :meth:`core.events.EventBus.status`, polled on the GUI thread by a timer: no signal
crosses from a plugin's dispatch thread, so nothing here can run on the wrong thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.field_text import human_name, unit_of
from app.user_dirs import start_folder
from core import paths
from core.events import EventBus, PluginState, PluginStatus
from core.plugins import (
    DiscoveredPlugin,
    Origin,
    Setting,
    last_discovery,
    plugin_defaults,
    resolve_settings,
    settings_schema,
)
from core.settings import PluginSettings, load_settings

__all__ = ["PluginsDialog", "status_text"]


def _default_text(setting: Setting) -> str:
    """A setting's default as the user reads it ("empty", "on", a secret's "hidden")."""
    if setting.secret:
        return "hidden"
    if setting.default in ("", None):
        return "empty"
    if isinstance(setting.default, bool):
        return "on" if setting.default else "off"
    return str(setting.default)


def _bound(value: float | None, fallback: float) -> float:
    return float(value) if value is not None else fallback


def _schema(plugin: object) -> dict[str, Setting]:
    try:
        return settings_schema(plugin)
    except ValueError:  # a broken schema was refused at discovery; nothing to check against here
        return {}


log = logging.getLogger(__name__)

REFRESH_MS = 500


def status_text(status: PluginStatus) -> str:
    """One line a user understands: "ok", "failed: ...", "disabled after 5 failures: ..."."""
    if status.abandoned:
        return "not responding (left behind at stop)"
    if status.stuck:
        return f"busy: in {status.busy_hook} for {status.busy_s:.0f} s ({status.dropped} events dropped)"
    if status.state is PluginState.DISABLED:
        if status.last_error.startswith("on_start"):
            return f"could not start: {status.last_error}"
        return f"disabled after {status.consecutive_failures} failures: {status.last_error}"
    if not status.enabled:
        return "off"
    if status.state is PluginState.FAILED:
        return f"failed: {status.last_error}"
    if status.state is PluginState.DEGRADED:
        return f"degraded: {status.problem}"
    return "ok"


class PluginsDialog(QDialog):
    """Lists the plugins of a running :class:`core.events.EventBus` and the broken ones.

    Args:
        bus: the app's running bus; None shows what discovery found, read-only.
        parent: the parent widget.
        settings: the current plugin settings (enabled flags and options); None reads them from the
            settings file.
        discovered: the discovery results, for the broken plugins; None uses
            :func:`core.plugins.last_discovery` (nothing is imported again).

    Signals:
        plugin_settings_changed(PluginSettings): the user switched a plugin or applied its settings.
            The owner stores it (``settings.replace(plugins=new)``) and saves the settings file.
    """

    plugin_settings_changed = Signal(object)

    COLUMNS = ("Plugin", "Origin", "On", "Status", "Calls", "Failures", "Dropped")

    def __init__(
        self,
        bus: EventBus | None,
        parent: QWidget | None = None,
        *,
        settings: PluginSettings | None = None,
        discovered: Sequence[DiscoveredPlugin] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Plugins")
        self.resize(820, 520)
        self.bus = bus
        self.plugin_settings = (
            settings if settings is not None else load_settings(paths.settings_path()).settings.plugins
        )
        found = list(discovered) if discovered is not None else list(last_discovery())
        names = set(bus.names) if bus is not None else set()
        self.broken = [d for d in found if not d.ok]
        # Without a bus, the working plugins of the discovery are listed read-only.
        self.idle = [d for d in found if d.ok and d.name not in names] if bus is None else []
        self._editors: dict[str, QWidget] = {}
        self._rows: dict[str, int] = {}
        self._selected: str | None = None

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for col in range(len(self.COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)

        self.settings_box = QGroupBox("Settings")
        self.form = QFormLayout()
        self.location_label = QLabel()
        self.location_label.setWordWrap(True)
        self.location_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.apply_button = QPushButton("Apply settings")
        self.apply_button.setToolTip("Restart the plugin with these settings and save them")
        self.test_button = QPushButton("Send test event")
        self.test_button.setToolTip("Hand this plugin a made-up 'recognized' event to check that it works")
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        box_buttons = QHBoxLayout()
        box_buttons.addWidget(self.apply_button)
        box_buttons.addWidget(self.test_button)
        box_buttons.addStretch(1)
        box_layout = QVBoxLayout(self.settings_box)
        box_layout.addWidget(self.location_label)
        box_layout.addLayout(self.form)
        box_layout.addLayout(box_buttons)
        box_layout.addWidget(self.message_label)

        self.folder_button = QPushButton("Open plugins folder")
        self.folder_button.setToolTip(str(paths.plugins_dir()))
        self.note = QLabel()
        self.note.setWordWrap(True)
        if bus is None:
            self.note.setText("Plugins are not running: switches and settings are read-only.")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.folder_button)
        bottom.addWidget(self.note, 1)
        bottom.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 3)
        layout.addWidget(self.settings_box, 2)
        layout.addLayout(bottom)

        self._fill()
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.itemChanged.connect(self._on_item_changed)
        self.apply_button.clicked.connect(self.apply_settings)
        self.test_button.clicked.connect(self.send_test_event)
        self.folder_button.clicked.connect(self._open_folder)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        if self.table.rowCount():
            self.table.selectRow(0)
        else:
            self._show_settings(None)

    # -- table
    def _fill(self) -> None:
        self.table.blockSignals(True)
        statuses = self.bus.status() if self.bus is not None else []
        rows = len(statuses) + len(self.idle) + len(self.broken)
        self.table.setRowCount(rows)
        row = 0
        for status in statuses:
            self._rows[status.name] = row
            self._set_row(row, status.name, status.origin, checkable=status.origin != Origin.INTERNAL)
            row += 1
        for item in self.idle:
            self._rows[item.name] = row
            self._set_row(row, item.name, item.origin, checkable=False)
            self.table.item(row, 3).setText("not running")
            row += 1
        for item in self.broken:
            self._set_row(row, item.name, item.origin, checkable=False, key=None)
            status_item = self.table.item(row, 3)
            status_item.setText(f"{item.state}: {item.error}")
            status_item.setToolTip(item.details or item.location)
            row += 1
        self.table.blockSignals(False)
        self.refresh()

    def _set_row(self, row: int, name: str, origin: str, *, checkable: bool, key: str | None = "") -> None:
        name_item = QTableWidgetItem(name)
        name_item.setData(Qt.ItemDataRole.UserRole, name if key is not None else None)
        on = QTableWidgetItem()
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if checkable and self.bus is not None:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        on.setFlags(flags)
        on.setCheckState(Qt.CheckState.Unchecked)
        for col, item in enumerate((name_item, QTableWidgetItem(origin), on)):
            self.table.setItem(row, col, item)
        for col in range(3, len(self.COLUMNS)):
            self.table.setItem(row, col, QTableWidgetItem(""))

    @Slot()
    def refresh(self) -> None:
        """Show every plugin's current status (called by the timer every 0.5 s)."""
        if self.bus is None:
            return
        self.table.blockSignals(True)
        try:
            for status in self.bus.status():
                row = self._rows.get(status.name)
                if row is None:
                    continue
                state = Qt.CheckState.Checked if status.enabled else Qt.CheckState.Unchecked
                on = self.table.item(row, 2)
                if on.checkState() != state:
                    on.setCheckState(state)
                text = status_text(status)
                cell = self.table.item(row, 3)
                if cell.text() != text:
                    cell.setText(text)
                    cell.setToolTip(status.last_error or status.problem)
                for col, value in ((4, status.calls), (5, status.failures), (6, status.dropped)):
                    self.table.item(row, col).setText(str(value))
        finally:
            self.table.blockSignals(False)

    def status_of(self, name: str) -> str:
        """The status text shown for a plugin (for tests and accessibility)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == name:
                return self.table.item(row, 3).text()
        raise KeyError(name)

    def row_of(self, name: str) -> int:
        """The table row of the plugin called ``name``.

        Raises:
            KeyError: no plugin has that name.
        """
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == name:
                return row
        raise KeyError(name)

    @Slot(QTableWidgetItem)
    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 2 or self.bus is None:
            return
        name = self.table.item(item.row(), 0).data(Qt.ItemDataRole.UserRole)
        if not name:
            return
        self.set_plugin_enabled(name, item.checkState() == Qt.CheckState.Checked)

    def set_plugin_enabled(self, name: str, enabled: bool) -> None:
        """Switch a plugin on or off now and remember it in the settings."""
        if self.bus is None:
            return
        self.bus.set_enabled(name, enabled)
        self.plugin_settings = self.plugin_settings.model_copy(
            update={"enabled": {**self.plugin_settings.enabled, name: enabled}}
        )
        self.plugin_settings_changed.emit(self.plugin_settings)
        self.refresh()

    # -- settings form
    @Slot()
    def _on_selection(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        name = self.table.item(rows.pop(), 0).data(Qt.ItemDataRole.UserRole) if rows else None
        self._show_settings(name)

    def select(self, name: str) -> None:
        """Select the row of the plugin called ``name``."""
        self.table.selectRow(self.row_of(name))

    def _show_settings(self, name: str | None) -> None:
        self._selected = name
        while self.form.rowCount():
            self.form.removeRow(0)
        self._editors = {}
        self._browse_buttons: list[QPushButton] = []
        self.message_label.clear()
        values: Mapping[str, Any] = {}
        defaults: Mapping[str, Any] = {}
        schema: Mapping[str, Setting] = {}
        location = ""
        if name is not None and self.bus is not None and name in self.bus.names:
            loaded = self.bus.plugin(name)
            values, defaults, location = (
                self.bus.current_settings(name),
                plugin_defaults(loaded.plugin),
                loaded.location,
            )
            schema = _schema(loaded.plugin)
        else:
            item = next((d for d in self.idle + self.broken if d.name == name), None)
            if item is not None:
                location = item.location
                if item.plugin is not None:
                    defaults = plugin_defaults(item.plugin)
                    schema = _schema(item.plugin)
                    values = {**defaults, **self.plugin_settings.options.get(item.name, {})}
        self.settings_box.setTitle(f"Settings of {name}" if name else "Settings")
        self.location_label.setText(location)
        for key, value in values.items():
            setting = schema.get(key) or Setting(default=defaults.get(key, value))
            editor = self._editor(value, defaults.get(key, value), setting, unit_of(key))
            editor.setObjectName(f"setting-{key}")
            label = QLabel(setting.label or human_name(key))
            label.setObjectName(f"setting-{key}-label")
            label.setToolTip(setting.help)
            label.setBuddy(editor)
            editor.setAccessibleName(label.text())
            self.form.addRow(label, self._setting_row(key, editor, setting))
            self._editors[key] = editor
        if name is not None and not values:
            self.form.addRow(QLabel("This plugin has no settings."))
        running = self.bus is not None and name is not None and name in self.bus.names
        internal = running and self.bus is not None and self.bus.plugin(name).origin == Origin.INTERNAL  # type: ignore[arg-type]
        self.apply_button.setEnabled(running and bool(values) and not internal)
        self.test_button.setEnabled(running and not internal)
        for widget in (*self._editors.values(), *self._browse_buttons):
            widget.setEnabled(running and not internal)

    def _setting_row(self, key: str, editor: QWidget, setting: Setting) -> QWidget:
        """The editor, "Browse…" for a path, and a line saying what the setting does and its default."""
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        row = QHBoxLayout()
        row.addWidget(editor, 1)
        if setting.path in ("file", "folder") and isinstance(editor, QLineEdit):
            browse = QPushButton("Browse…")
            browse.setObjectName(f"setting-{key}-browse")
            browse.setToolTip(f"Choose the {setting.path}")
            browse.clicked.connect(lambda: self._browse(editor, setting.path))
            browse.setEnabled(editor.isEnabled())
            row.addWidget(browse)
            self._browse_buttons.append(browse)
        column.addLayout(row)
        about = f"{setting.help[:1].upper()}{setting.help[1:].rstrip('.')}. " if setting.help else ""
        help_label = QLabel(f"{about}Default: {_default_text(setting)}.")
        help_label.setObjectName(f"setting-{key}-help")
        help_label.setProperty("role", "help")
        help_label.setWordWrap(True)
        column.addWidget(help_label)
        editor.setToolTip(setting.help)
        return box

    def _browse(self, editor: QLineEdit, kind: str) -> None:
        if kind == "folder":
            path = QFileDialog.getExistingDirectory(self, "Choose a folder", start_folder(editor.text()))
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a file", start_folder(editor.text()))
        if path:
            editor.setText(path)

    @staticmethod
    def _editor(value: Any, default: Any, setting: Setting, unit: str = "") -> QWidget:
        # The kind of editor follows the default's type, so a value saved as text still edits right.
        if setting.choices:
            combo = QComboBox()
            for choice in setting.choices:
                combo.addItem(str(choice), choice)
            combo.setCurrentIndex(max(combo.findData(value), 0))
            return combo
        if isinstance(default, bool):
            box = QCheckBox()
            box.setChecked(bool(value))
            return box
        spin: QSpinBox | QDoubleSpinBox
        if isinstance(default, int):
            spin = QSpinBox()
            spin.setRange(int(_bound(setting.min, -1e9)), int(_bound(setting.max, 1e9)))
            spin.setValue(int(value))
        elif isinstance(default, float):
            spin = QDoubleSpinBox()
            spin.setRange(_bound(setting.min, -1e9), _bound(setting.max, 1e9))
            spin.setDecimals(3)
            spin.setValue(float(value))
        else:
            line = QLineEdit("" if value is None else str(value))
            if setting.secret:
                line.setEchoMode(QLineEdit.EchoMode.Password)
            return line
        if unit:
            spin.setSuffix(f" {unit}")
        return spin

    def form_values(self) -> dict[str, Any]:
        """The values in the settings form, typed like the plugin's defaults."""
        out: dict[str, Any] = {}
        for key, editor in self._editors.items():
            if isinstance(editor, QCheckBox):
                out[key] = editor.isChecked()
            elif isinstance(editor, QSpinBox | QDoubleSpinBox):
                out[key] = editor.value()
            elif isinstance(editor, QLineEdit):
                out[key] = editor.text()
            elif isinstance(editor, QComboBox):
                out[key] = editor.currentData()
        return out

    def set_form_value(self, key: str, value: Any) -> None:
        """Put a value in the form (as a user typing it would)."""
        editor = self._editors[key]
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QSpinBox | QDoubleSpinBox):
            editor.setValue(value)
        elif isinstance(editor, QLineEdit):
            editor.setText(str(value))
        elif isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(editor.findData(value), 0))

    @Slot()
    def apply_settings(self) -> None:
        """Restart the selected plugin with the form's values and remember them in the settings."""
        name = self._selected
        if name is None or self.bus is None:
            return
        values, problems = resolve_settings(name, _schema(self.bus.plugin(name).plugin), self.form_values())
        if problems:  # checked as the plugin declared them; a bad value is not silently kept
            self.message_label.setText("; ".join(problems))
            return
        if not self.bus.update_settings(name, values):
            self.message_label.setText("The plugin is busy; try again in a moment.")
            return
        options = {**self.plugin_settings.options, name: values}
        self.plugin_settings = self.plugin_settings.model_copy(update={"options": options})
        self.plugin_settings_changed.emit(self.plugin_settings)
        self.message_label.setText("Settings applied; the plugin was restarted with them.")

    @Slot()
    def send_test_event(self) -> None:
        """Hand the selected plugin a test event; its status row shows how it went."""
        name = self._selected
        if name is None or self.bus is None:
            return
        if self.bus.send_test_event(name):
            self.message_label.setText("Test event sent; watch its status above.")
        else:
            self.message_label.setText("The test event could not be queued (the plugin is busy or stopped).")

    @Slot()
    def _open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.plugins_dir())))

    def done(self, result: int) -> None:
        """Stop the status timer, then close the dialog."""
        self.timer.stop()
        super().done(result)
