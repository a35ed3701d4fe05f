"""The settings page that chooses where the gallery and the history live, with a connection test.

"This computer" is the embedded store (a folder and SQLite, the default); "Shared server" is a
PostgreSQL server for several stations. The connection test runs on a thread of its own (it may wait
seconds for an unreachable server); the page polls its result with a timer on the GUI thread, so no
signal crosses threads.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QWidget,
)

from core.settings import StoreSettings

__all__ = ["StorePage"]

_HELP = (
    "The password is never saved here: put it in libpq's password file (~/.pgpass) or use a "
    "service file (service=NAME). Add ?sslmode=verify-full to the address for TLS."
)


class StorePage(QWidget):
    """Store choice, server address, station name and "Test connection".

    Args:
        changed: called when the user edits a value (the dialog applies it after a pause).
        gallery_dir: the folder gallery of this computer (what "Copy to the server" pushes).
    """

    def __init__(self, changed: Callable[[], None], gallery_dir: Callable[[], Path] | None = None) -> None:
        super().__init__()
        self._changed = changed
        self._gallery_dir = gallery_dir
        fields = StoreSettings.model_fields
        self.embedded = QRadioButton("This computer")
        self.embedded.setToolTip("A gallery folder and a history on this computer (no set-up)")
        self.shared = QRadioButton("Shared server")
        self.shared.setToolTip("One gallery and one history on a PostgreSQL server for every station")
        group = QButtonGroup(self)
        group.addButton(self.embedded)
        group.addButton(self.shared)
        self.embedded.setChecked(True)
        self.url = QLineEdit()
        self.url.setObjectName("store.url")
        self.url.setPlaceholderText("postgresql://door1@db.example.lan/ghostface")
        self.url.setToolTip(fields["url"].description or "")
        self.station = QLineEdit()
        self.station.setObjectName("store.station")
        self.station.setPlaceholderText(StoreSettings().station_name())
        self.station.setToolTip(fields["station"].description or "")
        self.test_button = QPushButton("Test connection")
        self.push_button = QPushButton("Copy this computer's gallery to the server")
        self.push_button.setToolTip(
            "Every person and photo of the gallery folder; what is there already is skipped"
        )
        self.pull_button = QPushButton("Copy the server's gallery to a folder…")
        self.pull_button.setToolTip("A folder per person; nothing in the folder is overwritten")
        self.result = QLabel(_HELP)
        self.result.setObjectName("store.result")
        self.result.setWordWrap(True)
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[Any] | None = None
        self._poll = QTimer(self)
        self._poll.setInterval(50)
        self._poll.timeout.connect(self._collect)

        self._lay_out()

        self.shared.toggled.connect(self._follow_choice)
        self.shared.toggled.connect(lambda _on: self._changed())
        self.url.editingFinished.connect(self._url_edited)
        self.station.editingFinished.connect(self._changed)
        self.test_button.clicked.connect(self.test_connection)
        self.push_button.clicked.connect(self.push_gallery)
        self.pull_button.clicked.connect(self._ask_pull)
        self._follow_choice(False)

    def _lay_out(self) -> None:
        fields = StoreSettings.model_fields
        choice = QHBoxLayout()
        choice.addWidget(self.embedded)
        choice.addWidget(self.shared)
        choice.addStretch(1)
        form = QFormLayout(self)
        form.addRow(QLabel(fields["backend"].title or "Gallery and history"), choice)
        form.addRow(QLabel(fields["url"].title or "Server"), self.url)
        form.addRow(QLabel(fields["station"].title or "Station name"), self.station)
        form.addRow(self.test_button, self.result)
        moves = QHBoxLayout()
        moves.addWidget(self.push_button)
        moves.addWidget(self.pull_button)
        moves.addStretch(1)
        form.addRow(QLabel("Move between modes"), moves)

    # -- values (the dialog's setters and getters)
    def backend(self) -> str:
        """``"postgresql"`` or ``"embedded"``."""
        return "postgresql" if self.shared.isChecked() else "embedded"

    def set_backend(self, value: str) -> None:
        """Show the stored choice."""
        (self.shared if value == "postgresql" else self.embedded).setChecked(True)
        self._follow_choice(value == "postgresql")

    def _follow_choice(self, shared: bool) -> None:
        for widget in (self.url, self.station, self.test_button, self.push_button, self.pull_button):
            widget.setEnabled(shared)

    def _url_edited(self) -> None:
        from core.store.postgres import strip_password

        try:
            clean, had = strip_password(self.url.text())
        except Exception as exc:  # noqa: BLE001 - any parse failure is shown, the value stays for editing
            self.result.setText(str(exc))
            return
        if had:
            self.url.setText(clean)
            self.result.setText("The password was removed from the address and is not saved. " + _HELP)
        self._changed()

    # -- the connection test
    def test_connection(self) -> None:
        """Connect to the server on a worker thread; the answer appears below (never a traceback)."""
        from core.store.postgres import describe_server

        self._start("Connecting…", describe_server, self.url.text().strip())

    def push_gallery(self) -> None:
        """Copy this computer's gallery folder to the server (needs the admin role); a report below."""
        if self._gallery_dir is not None:
            station = self.station.text().strip() or StoreSettings().station_name()
            url, folder = self.url.text().strip(), self._gallery_dir()
            self._start("Copying the gallery to the server…", _transfer, "push", url, folder, station)

    def pull_gallery(self, folder: Path) -> None:
        """Copy the server's gallery into ``folder``; a report below."""
        self._start("Copying the server's gallery…", _transfer, "pull", self.url.text().strip(), folder, "")

    def _ask_pull(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Copy the server's gallery into")
        if folder:
            self.pull_gallery(Path(folder))

    def _start(self, busy: str, work: Callable[..., str], *args: Any) -> None:
        if self._pending is not None:
            return
        for button in (self.test_button, self.push_button, self.pull_button):
            button.setEnabled(False)
        self.result.setText(busy)
        # One thread per job, ended once its answer is in: nothing runs on when the dialog closes.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-job")
        self._pending = self._pool.submit(work, *args)
        self._poll.start()

    def _collect(self) -> None:
        future = self._pending
        if future is None or not future.done():
            return
        self._poll.stop()
        self._pending = None
        self.shutdown()
        self._follow_choice(self.shared.isChecked())
        try:
            self.result.setText(future.result())
        except Exception as exc:  # noqa: BLE001 - every failure is one line for the user
            self.result.setText(f"Cannot use the server: {exc}")

    @property
    def testing(self) -> bool:
        """Whether a connection test is running."""
        return self._pending is not None

    def shutdown(self) -> None:
        """Stop polling; a running test finishes on its own thread, which then ends."""
        self._poll.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


def _transfer(direction: str, conninfo: str, folder: Path, station: str) -> str:
    """Push the folder gallery to the server, or pull the server's into the folder; the report as text."""
    from core.store import postgres as pg
    from core.store import transfer

    with pg.connect(conninfo) as conn:
        pg.check_schema(conn, pg.redact(conninfo))
        if direction == "push":
            report = transfer.push_gallery(conn, folder, station=station)
        else:
            report = transfer.pull_gallery(conn, folder)
    where = "to the server" if direction == "push" else f"into {folder}"
    return f"Copied {where}: " + "; ".join(report.lines())
