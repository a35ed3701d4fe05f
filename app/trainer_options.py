"""The trainer tab's recipe options, in plain language: degraded views, the online teacher, a time limit.

They map onto the config's ``data.degrade``, ``distill.online`` and ``max_minutes``. Degraded views with
a teacher need the teacher online (a stored target belongs to the clean crop), so the two boxes keep each
other consistent instead of letting Start fail.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QCheckBox, QFormLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

__all__ = ["RecipeOptions"]

DEGRADE_HELP = (
    "Each training crop is also shown shrunk, blurred, compressed and slightly turned, like a face far "
    "from the camera, so the model keeps recognizing people in small and blurred faces."
)
ONLINE_HELP = (
    "The teacher model (SFace) looks at the very view the student sees, instead of a stored answer for "
    "the clean crop. About half the training time goes to it; degraded views need it."
)


def _help(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setObjectName("HelpText")
    label.setEnabled(False)  # drawn in the muted colour of the theme
    return label


class RecipeOptions:
    """Adds the option rows to a form and reads/writes them against a config dict."""

    def __init__(self, form: QFormLayout) -> None:
        self.degrade_check = QCheckBox("Degraded views (robust to small/blurred faces)")
        self.degrade_check.setToolTip(DEGRADE_HELP)
        self.online_check = QCheckBox("Teacher online (SFace judges every view)")
        self.online_check.setToolTip(ONLINE_HELP)
        self.degrade_check.toggled.connect(self.sync)
        self.online_check.toggled.connect(self.sync)
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        for widget in (self.degrade_check, _help(DEGRADE_HELP), self.online_check, _help(ONLINE_HELP)):
            column.addWidget(widget)
        form.addRow("Options", box)

        self.minutes_spin = QSpinBox()
        self.minutes_spin.setRange(0, 100_000)
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setSpecialValueText("no limit")
        self.minutes_spin.setToolTip(
            "The run ends, validated and saved, when this time is spent (0: no limit)"
        )
        form.addRow("Time limit", self.minutes_spin)
        self._uses_teacher = True

    def set_uses_teacher(self, uses_teacher: bool) -> None:
        """The mode changed: the teacher option only means something when the mode has a teacher."""
        self._uses_teacher = uses_teacher
        self.sync()

    @Slot()
    def sync(self, *_args: Any) -> None:
        """Keep the boxes consistent: degraded views with a teacher force the teacher online."""
        forced = self._uses_teacher and self.degrade_check.isChecked()
        if forced and not self.online_check.isChecked():
            self.online_check.setChecked(True)
        self.online_check.setEnabled(self._uses_teacher and not forced)

    def load(self, config: dict[str, Any]) -> None:
        """Show the options of a config dict."""
        self.degrade_check.setChecked(bool((config.get("data") or {}).get("degrade", False)))
        self.online_check.setChecked(bool((config.get("distill") or {}).get("online", False)))
        self.minutes_spin.setValue(int(round(config.get("max_minutes") or 0)))
        self.sync()

    def apply(self, config: dict[str, Any]) -> None:
        """Write the options into a config dict (in place)."""
        config["data"] = {**(config.get("data") or {}), "degrade": self.degrade_check.isChecked()}
        config["distill"] = {**(config.get("distill") or {}), "online": self.online_check.isChecked()}
        config["max_minutes"] = self.minutes_spin.value() or None

    def values(self) -> dict[str, Any]:
        """The options as plain values, for the tab's memory."""
        return {
            "degrade": self.degrade_check.isChecked(),
            "online": self.online_check.isChecked(),
            "minutes": self.minutes_spin.value(),
        }

    def restore(self, values: dict[str, Any]) -> None:
        """Show remembered values (missing ones stay)."""
        if "degrade" in values:
            self.degrade_check.setChecked(bool(values["degrade"]))
        if "online" in values:
            self.online_check.setChecked(bool(values["online"]))
        if "minutes" in values:
            self.minutes_spin.setValue(int(values["minutes"]))
        self.sync()
