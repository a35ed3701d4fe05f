"""The main window end to end: real clip, real gallery, real models; shortcuts, no-camera state, shutdown."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QThread, QTimer
from PySide6.QtWidgets import QApplication

from app.context import AppContext
from app.main_window import MainWindow, create_window
from core.settings import Settings, load_settings
from tests.app.test_video_view import landmark_dots_drawn

RUN_TIMEOUT_MS = 60_000


def _window(qtbot, settings: Settings, *, autostart: bool = False, **context) -> MainWindow:
    window = MainWindow(AppContext.build(settings, system_trash=False, **context), autostart=autostart)
    qtbot.addWidget(window)
    window.show()
    return window


def _named(window: MainWindow) -> set[str]:
    result = window.video_view.result
    return {f.person for f in result.faces if f.person} if result is not None else set()


def test_running_window_shows_named_faces_people_and_figures_then_closes_without_threads(
    qtbot,
    hamilton_clip: Path,
    hamilton_gallery: Path,
) -> None:
    before = set(threading.enumerate())
    settings = Settings().replace(camera={"source": str(hamilton_clip)}, gallery_dir=str(hamilton_gallery))
    window = _window(qtbot, settings, autostart=True)
    qtbot.waitUntil(lambda: "Lin-Manuel Miranda" in _named(window), timeout=RUN_TIMEOUT_MS)
    assert window.live.live_stack.currentWidget() is window.video_view
    qtbot.waitUntil(
        lambda: "fps" in window.figures.fps_label.text() and window.figures.fps_label.text()[0].isdigit(),
        timeout=5000,
    )
    assert "detect" in window.figures.timings_label.text() and "embed" in window.figures.timings_label.text()
    assert window.figures.dropped_label.text().startswith("dropped")
    window.live.people.refresh()
    qtbot.waitUntil(lambda: "Lin-Manuel Miranda" in window.live.people.names_in_view(), timeout=5000)
    top = window.live.people.topLevelItem(0)
    assert top.text(0) == "Lin-Manuel Miranda" and top.text(2) and top.text(3)
    assert window.diagnostics.value("Embedder device") == "cpu"
    assert window.diagnostics.value("Embedder runtime") == "OpenCV DNN (ONNX)"
    # The recognition events reach the events panel (and, through the event bus, the history).
    qtbot.waitUntil(lambda: window.live.events_panel.row_count() > 0, timeout=RUN_TIMEOUT_MS)
    thread = window.controller._thread
    assert isinstance(thread, QThread) and thread.isRunning()

    window.close()
    assert not window.controller.is_running()
    assert thread.isFinished()
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not leaked, leaked
    # The frame reader is a daemon thread, but it must be gone too.
    assert not [t for t in threading.enumerate() if t.name == "frame-feed"]


def test_space_starts_and_stops(qtbot, hamilton_clip: Path) -> None:
    window = _window(qtbot, Settings().replace(camera={"source": str(hamilton_clip)}))
    window.activateWindow()
    window.start_action.trigger()  # what Space does; the shortcut itself is checked below
    qtbot.waitUntil(lambda: window.video_view.frames_shown > 0, timeout=RUN_TIMEOUT_MS)
    assert window.start_action.text() == "&Stop"
    window.start_action.trigger()
    assert not window.controller.is_running()
    assert window.start_action.text() == "&Start"
    shortcuts = {a.shortcut().toString() for a in window.actions()}
    assert {"Space", "Ctrl+O", "Ctrl+,", "F11", "Ctrl+Q"} <= shortcuts
    window.close()


def test_no_camera_is_a_state_that_offers_a_video_file(qtbot) -> None:
    window = _window(qtbot, Settings().replace(camera={"source": "0"}))
    assert window.live.live_stack.currentWidget() is window.live.empty_state
    # Cameras are looked for on a background thread; the window says so meanwhile.
    qtbot.waitUntil(lambda: window.live.empty_state.title.text() == "No camera found", timeout=20_000)
    assert window.live.empty_state.open_video_button.isVisible()
    # Start with no camera does not crash nor start a worker: it explains again.
    window.start()
    assert not window.controller.is_running()
    assert "No camera" in window.statusBar().currentMessage()
    assert window.source_combo.itemText(0) == "No camera found"
    # "Try again" looks again, and still finds none.
    window.live.empty_state.retry.emit()
    assert window.live.empty_state.title.text() == "Looking for cameras…"
    qtbot.waitUntil(lambda: window.live.empty_state.title.text() == "No camera found", timeout=20_000)
    assert not window.controller.is_running()
    window.close()


def test_source_change_is_saved_and_geometry_remembered(qtbot, hamilton_clip: Path, tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    window = create_window(path, system_trash=False)
    qtbot.addWidget(window)
    window.show()
    window.set_source(str(hamilton_clip), start=False)
    assert load_settings(path).settings.camera.source == str(hamilton_clip)
    window.resize(max(window.minimumSizeHint().width(), 600) + 10, 540)
    qtbot.wait(50)
    size = (window.width(), window.height())
    assert size[0] < 780, "the window can be made narrower than the test screen"
    window.close()
    again = create_window(path, system_trash=False)
    qtbot.addWidget(again)
    assert again.settings.camera.source == str(hamilton_clip)
    assert (again.width(), again.height()) == size
    again.close()


def test_settings_dialog_changes_reach_the_running_worker_and_cancel_restores(
    qtbot, hamilton_clip: Path
) -> None:
    settings = Settings().replace(camera={"source": str(hamilton_clip)})
    window = _window(qtbot, settings, autostart=True)
    qtbot.waitUntil(lambda: window.video_view.frames_shown > 0, timeout=RUN_TIMEOUT_MS)
    dialog = window.open_settings()
    dialog.set_value("display.show_landmarks", True)
    dialog.set_value("recognition.margin", 0.3)
    qtbot.waitUntil(lambda: window.controller.settings.recognition.margin == 0.3, timeout=5000)
    # What is drawn, read from the view's pixels: the landmarks of the faces on screen.
    qtbot.waitUntil(
        lambda: _faces_shown(window) and all(landmark_dots_drawn(window.video_view)), timeout=10_000
    )
    dialog.reject()
    assert window.controller.settings == settings and window.settings == settings
    qtbot.waitUntil(
        lambda: _faces_shown(window) and not any(landmark_dots_drawn(window.video_view)), timeout=10_000
    )
    window.close()


def _faces_shown(window: MainWindow) -> bool:
    result = window.video_view.result
    return result is not None and bool(result.faces)


def test_main_entry_point_starts_recognising_with_source_and_gallery(
    qtbot,
    hamilton_clip: Path,
    hamilton_gallery: Path,
    tmp_path: Path,
) -> None:
    from app.main import main

    seen: dict[str, object] = {}

    def poll() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if not windows:
            return
        window = windows[0]
        seen["source"] = window.settings.camera.source
        seen["gallery"] = window.settings.gallery_dir
        if "Barack Obama" in _named(window) or "Lin-Manuel Miranda" in _named(window):
            seen["named"] = _named(window)
            window.close()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(100)
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(
        lambda: [w.close() for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    )
    guard.start(RUN_TIMEOUT_MS)
    try:
        code = main(
            [
                "--source",
                str(hamilton_clip),
                "--gallery",
                str(hamilton_gallery),
                "--settings",
                str(tmp_path / "s.json"),
            ]
        )
    finally:
        timer.stop()
        guard.stop()
    assert code == 0
    assert seen.get("source") == str(hamilton_clip)
    assert seen.get("gallery") == str(hamilton_gallery.resolve())
    assert seen.get("named"), "no face was named before the time limit"


def test_a_trainer_that_fails_to_import_does_not_break_the_window(
    qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The trainer tab is the one optional part: a bundle may be built without torch's training side.
    import sys

    monkeypatch.setitem(sys.modules, "app.trainer_tab", None)  # importing it now raises ImportError
    window = _window(qtbot, Settings())
    window.tabs.setCurrentWidget(window.trainer_holder)
    assert "not available" in window.trainer_tab.text()
    window.close()


def test_history_plugins_and_diagnostics_open_from_the_window(qtbot) -> None:
    window = _window(qtbot, Settings())
    history = window.open_history()
    plugins = window.open_plugins()
    assert history is not None and history.isVisible()
    assert plugins is not None and plugins.isVisible()
    # The plugins window shows the running bus of the window, with the history recorder in it.
    assert window.event_bus is not None and "history" in window.event_bus.names
    history.close()
    plugins.close()
    window.menu_actions.diagnostics.trigger()
    assert window.tabs.currentWidget() is window.diagnostics
    qtbot.waitUntil(lambda: window.diagnostics.models.topLevelItemCount() > 0, timeout=5000)
    ids = {
        window.diagnostics.models.topLevelItem(i).text(0)
        for i in range(window.diagnostics.models.topLevelItemCount())
    }
    assert {"yunet", "sface"} <= ids
    # The runtime, read off the GUI thread: versions, and the devices PyTorch can use.
    form = window.diagnostics.runtime_form
    qtbot.waitUntil(lambda: form.rowCount() > 0, timeout=60_000)
    labels = {form.itemAt(row, form.ItemRole.LabelRole).widget().text() for row in range(form.rowCount())}
    assert {"Python", "OpenCV", "PyTorch", "PySide6"} <= labels
    window.close()


def test_use_this_model_switches_the_running_pipeline_and_its_threshold_and_is_saved(
    qtbot,
    hamilton_clip: Path,
    hamilton_gallery: Path,
    tmp_path: Path,
) -> None:
    from core.ghostfacenet import load_backbone, save_backbone
    from core.modelstore import default_store

    # A trained checkpoint as the trainer writes it: the weights plus their calibrated threshold.
    trained = tmp_path / "run" / "best_backbone.pt"
    trained.parent.mkdir()
    save_backbone(
        load_backbone(default_store().resolve("ghostfacenetv2")), trained, {"similarity_threshold": 0.8125}
    )
    path = tmp_path / "settings.json"
    settings = Settings().replace(camera={"source": str(hamilton_clip)}, gallery_dir=str(hamilton_gallery))
    window = _window(qtbot, settings, settings_path=path, autostart=True)
    qtbot.waitUntil(lambda: window.diagnostics.value("Embedder").startswith("sface@"), timeout=RUN_TIMEOUT_MS)
    assert window.diagnostics.value("Similarity threshold") == "0.360 (the model's own)"

    window.tabs.setCurrentWidget(window.trainer_holder)
    window.trainer_tab.use_model.emit(str(trained))

    assert window.settings.recognition.embedder == f"ghostfacenetv2:{trained}"
    assert load_settings(path).settings.recognition.embedder == f"ghostfacenetv2:{trained}"
    # The running worker builds the new model, re-embeds the gallery with it and matches on its scale.
    qtbot.waitUntil(
        lambda: window.diagnostics.value("Embedder").startswith("ghostfacenetv2@"), timeout=RUN_TIMEOUT_MS
    )
    qtbot.waitUntil(
        lambda: window.diagnostics.value("Similarity threshold") == "0.812 (the model's own)", timeout=10_000
    )
    # The gallery worker, the folder's one owner, re-embeds it for the new model while the video goes on.
    qtbot.waitUntil(
        lambda: window.diagnostics.value("Gallery").endswith("2 people, 3 embeddings"), timeout=RUN_TIMEOUT_MS
    )
    # Diagnostics says what executes it: the deployed ONNX form through OpenCV, not eager PyTorch.
    assert window.diagnostics.value("Embedder runtime") == "OpenCV DNN (ONNX)"
    assert window.controller.is_running()
    window.close()


def test_measure_mode_writes_its_figures_and_quits(
    qtbot, hamilton_clip: Path, hamilton_gallery: Path, tmp_path: Path
) -> None:
    from app.main import main

    out = tmp_path / "measure.json"
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(
        lambda: [w.close() for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    )
    guard.start(RUN_TIMEOUT_MS)
    try:
        code = main(
            [
                *("--source", str(hamilton_clip), "--gallery", str(hamilton_gallery)),
                *("--settings", str(tmp_path / "s.json"), "--as-fast-as-possible"),
                *("--measure", "1.5", "--measure-out", str(out)),
            ]
        )
    finally:
        guard.stop()
    assert code == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["source"] == str(hamilton_clip) and report["realtime"] is False
    assert report["frames_processed"] > 0 and report["app_fps"] > 0
    assert report["mean_stage_ms"]["detect"] > 0
    assert set(report["gui_thread"]) and isinstance(report["gui_stalls_over_20ms"], list)


def test_an_exception_on_any_thread_reaches_the_window(qtbot) -> None:
    window = _window(qtbot, Settings())
    errors = window.context.errors
    errors.install()
    try:
        worker = threading.Thread(target=_raise, name="failing-helper")
        with qtbot.waitSignal(errors.reported, timeout=5000) as blocker:
            worker.start()
            worker.join()
    finally:
        errors.uninstall()
    assert isinstance(blocker.args[0], LookupError)
    assert window.banner.isVisible() and "nothing here" in window.banner.label.text()
    assert "LookupError: nothing here" in window.diagnostics.errors.toPlainText()
    window.close()


def _raise() -> None:
    raise LookupError("nothing here")


def test_one_gallery_owner_per_folder(
    qtbot, hamilton_clip: Path, hamilton_gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The live pipeline reads the gallery worker's embeddings; it never opens the folder a second time
    # (two owners once embedded the same photos at once, kept apart only by a flag).
    from core import gallery as gallery_module

    opened: list[Path] = []
    original = gallery_module.Gallery.__init__

    def counting(self, root, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        opened.append(Path(root).resolve())
        original(self, root, *args, **kwargs)

    monkeypatch.setattr(gallery_module.Gallery, "__init__", counting)
    settings = Settings().replace(camera={"source": str(hamilton_clip)}, gallery_dir=str(hamilton_gallery))
    window = _window(qtbot, settings, autostart=True)
    qtbot.waitUntil(
        lambda: bool(_named(window) & {"Barack Obama", "Lin-Manuel Miranda"}), timeout=RUN_TIMEOUT_MS
    )
    assert opened.count(hamilton_gallery.resolve()) == 1
    window.close()
