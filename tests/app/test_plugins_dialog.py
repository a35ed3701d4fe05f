"""The Plugins dialog shows refused and broken plugins with the reason, and treats secrets as secrets."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QLineEdit

from app.plugins_dialog import PluginsDialog
from core.events import create_event_bus
from core.settings import PluginSettings, Settings


def test_refused_and_broken_plugins_are_listed_with_the_reason(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "plugins"
    folder.mkdir(mode=0o700)
    shared = folder / "shared.py"
    shared.write_text("def on_event(e): pass\n")
    shared.chmod(0o666)
    (folder / "typo.py").write_text("def on_evnt(e): pass\n")
    bus = create_event_bus(Settings(), folder=folder, history=False)
    try:
        dialog = PluginsDialog(bus, settings=PluginSettings(), discovered=bus.discovered)
        qtbot.addWidget(dialog)
        assert (
            dialog.status_of("shared")
            == f"refused: {shared} is writable by group and others (fix: chmod go-w {shared})"
        )
        assert dialog.status_of("typo").startswith("broken: unknown hook on_evnt")
        # The webhook's URL (a token, often) is a secret: typed as a password, never shown.
        dialog.select("webhook")
        editor = dialog.findChild(QLineEdit, "setting-url")
        assert editor is not None and editor.echoMode() is QLineEdit.EchoMode.Password
        assert editor.toolTip() == "http(s) URL to POST each event to; empty sends nothing"
        # A bad value cannot be entered: the field keeps to the bounds the plugin declared.
        timeout = dialog._editors["timeout_s"]
        timeout.setValue(0.0)  # type: ignore[attr-defined]
        assert timeout.value() == 0.1  # type: ignore[attr-defined]
    finally:
        bus.stop()


def test_the_window_opens_although_a_plugin_ends_its_process_on_import(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Issue 12: os._exit(9) in a plugin module used to end every start of the app within 0.3 s."""
    from app.main_window import create_window
    from core.paths import plugins_dir

    (plugins_dir() / "killer.py").write_text("import os\nos._exit(9)\n")
    (plugins_dir() / "slow.py").write_text("import time\ntime.sleep(6)\ndef on_event(e): pass\n")
    window = create_window(system_trash=False)
    qtbot.addWidget(window)
    bus = window.event_bus
    assert bus is not None
    assert "slow" not in bus.names  # the window is there while the slow import still runs
    qtbot.waitUntil(lambda: any(d.name == "killer" for d in bus.discovered), timeout=20000)
    killer = next(d for d in bus.discovered if d.name == "killer")
    assert killer.error == "crashed while loading: its process exited with code 9"
    qtbot.waitUntil(lambda: "slow" in bus.names, timeout=30000)
    dialog = window.open_plugins()
    assert dialog.status_of("killer").startswith("broken: crashed while loading")
    dialog.close()
    window.close()


def test_the_app_and_ghostface_run_give_plugins_the_same_visits(
    qtbot,
    hamilton_clip,
    hamilton_gallery,  # noqa: F811 - the fixture
    tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    """Issue 15: the app and `ghostface run --plugins` fire a folder plugin with the same events."""
    from app.main_window import MainWindow
    from cli.main import main
    from core.paths import plugins_dir
    from tests.core._plugin_kit import FOLDER_PLUGIN, read_jsonl, write

    write(plugins_dir(), "jsonl_log.py", FOLDER_PLUGIN)
    app_log, cli_log = tmp_path / "app.jsonl", tmp_path / "cli.jsonl"
    settings = Settings().replace(
        camera={"source": str(hamilton_clip), "loop_video": False},
        gallery_dir=str(hamilton_gallery),
        plugins={"options": {"jsonl-log": {"path": str(app_log)}}},
    )
    window = MainWindow(settings, system_trash=False, autostart=True)
    qtbot.addWidget(window)
    window.controller.realtime = False  # every frame, as fast as it goes (as `ghostface run` does)
    window.show()
    qtbot.waitUntil(lambda: window.events_panel.row_count() > 0, timeout=120_000)
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=120_000)
    window.close()  # stops the bus: the plugin's on_stop closes its file
    from_app = read_jsonl(app_log)
    assert from_app and from_app[-1] == {"stopped": True}

    settings_file = tmp_path / "settings.json"
    settings_file.write_text(
        Settings().replace(plugins={"options": {"jsonl-log": {"path": str(cli_log)}}}).model_dump_json()
    )
    code = main(
        [
            "run",
            "--source",
            str(hamilton_clip),
            "--gallery",
            str(hamilton_gallery),
            "--plugins",
            "--settings",
            str(settings_file),
        ]
    )
    assert code == 0
    from_cli = read_jsonl(cli_log)

    def visits(rows: list[dict]) -> list[tuple[str, str]]:
        return sorted(
            (str(r["kind"]), str(r["person"])) for r in rows if r.get("kind") in ("recognized", "left")
        )

    assert visits(from_app) == visits(from_cli)
    assert ("recognized", "Lin-Manuel Miranda") in visits(from_app)
    for rows in (from_app, from_cli):  # each visit's recognized and left share their visit id
        for person in {r["person"] for r in rows if r.get("kind") == "left"}:
            ids = {(r["kind"], r["visit_id"]) for r in rows if r.get("person") == person}
            assert len({v for _, v in ids}) == 1, (person, ids)


def test_safe_mode_says_so_in_the_window(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app.main_window import create_window
    from core.paths import plugins_dir

    (plugins_dir() / "mine.py").write_text("def on_event(e): pass\n")
    monkeypatch.setenv("GHOSTFACE_SAFE_MODE", "1")  # what --no-plugins sets
    window = create_window(system_trash=False)
    qtbot.addWidget(window)
    assert window.banner_label.text().startswith("Safe mode: plugins from the plugins folder")
    assert window.event_bus is not None and "mine" not in window.event_bus.names
    window.close()
