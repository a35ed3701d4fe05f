"""The trainer tab: a real (tiny) training run in its worker thread, stopped, resumed and adopted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.trainer_tab import TrainerTab


@pytest.fixture(autouse=True)
def _no_modal_boxes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A message box would wait for a click that never comes: record its text instead."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: shown.append(args[2]))
    return shown


@pytest.fixture
def crops(train_dir: Path, tmp_path: Path) -> Path:
    """Four CelebA identities, 6 crops each: 3 batches of 8 per epoch."""
    root = tmp_path / "crops"
    people = [p for p in sorted((train_dir / "celeba").iterdir()) if len(list(p.glob("*.jpg"))) >= 6][:4]
    for person in people:
        (root / person.name).mkdir(parents=True)
        for crop in sorted(person.glob("*.jpg"))[:6]:
            shutil.copy2(crop, root / person.name / crop.name)
    return root


def _training(progress) -> bool:
    """A batch was trained (not a report of a phase before the first batch)."""
    return progress.phase == "train" and progress.done > 0


def _tab(qtbot, crops: Path, tmp_path: Path) -> TrainerTab:
    tab = TrainerTab()
    qtbot.addWidget(tab)
    tab.set_data_folder(crops)
    tab.output_edit.setText(str(tmp_path / "run"))
    tab.mode_combo.setCurrentIndex(0)  # ArcFace: labelled folders, no teacher needed
    tab.epochs_spin.setValue(2)
    tab.batch_spin.setValue(8)
    return tab


def test_start_stop_resume_and_use_the_model(qtbot, crops: Path, tmp_path: Path, no_leaked_threads) -> None:
    tab = _tab(qtbot, crops, tmp_path)
    assert not tab.resume_button.isEnabled() and not tab.use_button.isEnabled()

    with qtbot.waitSignal(tab.controller.progress, timeout=120000, check_params_cb=_training):
        tab.start_button.click()
    assert tab.controller.is_running() and tab.stop_button.isEnabled() and not tab.start_button.isEnabled()
    with qtbot.waitSignal(tab.controller.stopped, timeout=120000):
        tab.stop_button.click()
    qtbot.waitUntil(lambda: tab._result is not None, timeout=10000)
    assert tab._result.stopped and (tmp_path / "run" / "last.pt").is_file()
    assert tab.resume_button.isEnabled() and tab.loss_plot.points

    with qtbot.waitSignal(tab.controller.finished, timeout=300000) as finished:
        tab.resume_button.click()
    qtbot.waitUntil(lambda: not tab.controller.is_running(), timeout=30000)
    result = finished.args[0]
    assert not result.stopped and result.epochs_completed == 2
    assert "Done: 2 epochs" in tab.status_label.text()
    with qtbot.waitSignal(tab.use_model) as used:
        tab.use_button.click()
    assert Path(used.args[0]).is_file()


def test_bad_form_and_bad_config_are_reported_without_starting(qtbot, tmp_path: Path, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: warnings.append(args[2]))
    tab = TrainerTab()
    qtbot.addWidget(tab)
    tab.start_button.click()
    assert "training data" in warnings[-1] and not tab.controller.is_running()
    bad = tmp_path / "bad.json"
    bad.write_text('{"data_path": "x", "epochs": 0}', encoding="utf-8")
    before = tab.epochs_spin.value()
    assert not tab.load_config_file(bad)
    assert "epochs" in warnings[-1] and tab.epochs_spin.value() == before


def test_loading_a_config_fills_the_form(qtbot, tmp_path: Path) -> None:
    configs = Path(__file__).resolve().parents[2] / "configs"
    tab = TrainerTab()
    qtbot.addWidget(tab)
    assert tab.load_config_file(configs / "both.json")
    assert tab.mode_combo.currentData() == "both"
    assert tab.width_combo.currentData() == 1.3
    config = tab.build_config()
    assert config.backbone.stem_stride == 1 and config.loss.weight == 0.05
    tab.epochs_spin.setValue(3)
    assert tab.build_config().epochs == 3
    assert tab.build_config().init_backbone is None
    # The shipped model's config fine-tunes from a first stage; "Installed model" starts from the app's.
    assert tab.load_config_file(configs / "shipped_ghostfacenetv2.json")
    assert tab.build_config().init_backbone == "runs/stage1/best_backbone.pt"
    tab.use_installed_model_as_start()
    config = tab.build_config()
    assert Path(config.init_backbone).name == "ghostfacenetv2.pt" and config.backbone.width == 1.0


def test_close_stops_a_running_training(qtbot, crops: Path, tmp_path: Path, no_leaked_threads) -> None:
    tab = _tab(qtbot, crops, tmp_path)
    with qtbot.waitSignal(tab.controller.progress, timeout=120000, check_params_cb=_training):
        tab.start_button.click()
    tab.close()
    assert not tab.controller.is_running()
    assert (tmp_path / "run" / "last.pt").is_file()


def test_the_default_is_fine_tuning_the_installed_model_with_the_shipped_recipe(qtbot, crops: Path) -> None:
    tab = TrainerTab()
    qtbot.addWidget(tab)
    tab.set_data_folder(crops)
    config = tab.build_config()
    assert Path(config.init_backbone).name == "ghostfacenetv2.pt" and config.mode == "distill"
    assert config.distill.online and config.data.degrade and config.distill.relational_weight == 1.0
    assert config.max_minutes == 75 and config.optimizer.base_lr == 0.001
    # Degraded views with a teacher need it online: the box cannot be unticked while they are on.
    assert not tab.options.online_check.isEnabled()
    tab.options.degrade_check.setChecked(False)
    tab.options.online_check.setChecked(False)
    assert not tab.build_config().distill.online and not tab.build_config().data.degrade
    tab.options.degrade_check.setChecked(True)
    assert tab.options.online_check.isChecked() and tab.build_config().distill.online


def test_phases_are_named_with_the_time_left_and_never_say_none() -> None:
    from app.training_worker import TrainingProgress, describe_progress

    nan = float("nan")
    texts = [
        describe_progress(TrainingProgress("data", 0, 0, 0, 3, nan, 0.0, None, 0.0)),
        describe_progress(TrainingProgress("teacher", 10, 40, 0, 3, nan, 0.0, 30.0, 0.0)),
        describe_progress(TrainingProgress("teacher", 0, 40, 0, 3, nan, 0.0, None, 0.0)),
        describe_progress(TrainingProgress("projection", 0, 0, 0, 3, nan, 0.0, None, 0.0)),
        describe_progress(TrainingProgress("train", 5, 30, 1, 3, 0.5, 1e-3, None, 20.0, 5, 10)),
        describe_progress(TrainingProgress("train", 15, 30, 2, 3, 0.4, 1e-3, 250.0, 20.0, 5, 10)),
    ]
    assert texts[1] == "Teacher targets: 10 of 40 crops · about 30s left"
    assert "estimating the time left" in texts[2] and "estimating the time left" in texts[4]
    assert texts[5].startswith("Epoch 2 of 3 · batch 5 of 10 · about 4m10s left")
    assert all("None" not in t and "?" not in t for t in texts)


def test_a_tiny_run_of_the_default_recipe_names_each_phase(
    qtbot, crops: Path, tmp_path: Path, no_leaked_threads
) -> None:
    tab = TrainerTab()
    qtbot.addWidget(tab)
    tab.set_data_folder(crops)
    tab.output_edit.setText(str(tmp_path / "run"))
    tab.epochs_spin.setValue(1)
    shown: list[str] = []
    tab.controller.progress.connect(lambda _p: shown.append(tab.status_label.text()))
    with qtbot.waitSignal(tab.controller.stopped, timeout=300000):
        tab.start_button.click()
    result = tab._result
    assert result is not None, tab.status_label.text()
    # The recipe's 60 held-out people and batches of 96 were fitted to 4 people and 24 crops: one batch.
    assert not result.stopped and result.epochs_completed == 1 and len(result.history) == 1
    log = tab.log_view.toPlainText()
    assert "no validation" in log and "batches of 24 crops instead of 96" in log
    assert shown[0] == "Reading the training crops…"
    assert "Matching the start model to the teacher…" in shown
    assert any(s.startswith("Epoch 1 of 1 · batch 1 of 1 · about ") for s in shown)
    assert all("None" not in s for s in [*shown, tab.status_label.text(), log])
    assert tab.status_label.text() == "Done: 1 epoch, not validated (no people held out)."


def test_stopped_before_a_checkpoint_says_so_without_none(
    qtbot, crops: Path, tmp_path: Path, no_leaked_threads
) -> None:
    tab = _tab(qtbot, crops, tmp_path)
    # Stop at the very first report (reading the data): no batch is trained, no checkpoint exists.
    tab.controller.progress.connect(lambda _p: tab.stop())
    with qtbot.waitSignal(tab.controller.finished, timeout=120000):
        tab.start_button.click()
    qtbot.waitUntil(lambda: not tab.controller.is_running(), timeout=30000)
    assert tab._result.stopped and tab._result.last_checkpoint is None
    text = tab.status_label.text()
    assert text == "Stopped before the first checkpoint was saved: Start begins again." and "None" not in text
    assert not tab.resume_button.isEnabled()


def test_the_form_and_the_last_run_are_remembered_and_offered(
    qtbot, crops: Path, tmp_path: Path, no_leaked_threads
) -> None:
    tab = _tab(qtbot, crops, tmp_path)
    tab.options.degrade_check.setChecked(False)
    tab.options.minutes_spin.setValue(5)
    tab.lr_spin.setValue(0.0005)
    with qtbot.waitSignal(tab.controller.progress, timeout=120000, check_params_cb=_training):
        tab.start_button.click()
    with qtbot.waitSignal(tab.controller.stopped, timeout=120000):
        tab.stop_button.click()
    qtbot.waitUntil(lambda: tab._result is not None, timeout=10000)
    tab.close()

    again = TrainerTab()
    qtbot.addWidget(again)
    assert again.data_edit.text() == str(crops) and again.mode_combo.currentData() == "arcface"
    assert (
        again.epochs_spin.value() == 2 and again.batch_spin.value() == 8 and again.lr_spin.value() == 0.0005
    )
    assert not again.options.degrade_check.isChecked() and again.options.minutes_spin.value() == 5
    assert again.run_dir == tmp_path / "run" and again.resume_button.isEnabled()
    assert (
        again.status_label.text() == "Your last run (run) stopped after 0 of 2 epochs: Resume continues it."
    )
    # Start never overwrites that run: a new run gets a new folder.
    with qtbot.waitSignal(again.controller.progress, timeout=120000, check_params_cb=_training):
        again.start_button.click()
    assert again.run_dir != tmp_path / "run" and (tmp_path / "run" / "last.pt").is_file()
    again.shutdown()


def test_start_from_names_the_installed_model_and_home_paths_read_with_a_tilde(
    qtbot, crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.trainer_form import INSTALLED_MODEL_LABEL
    from app.user_dirs import display_path

    monkeypatch.setenv("HOME", str(tmp_path))
    assert display_path(tmp_path / "crops" / "obama") == "~/crops/obama" and display_path(tmp_path) == "~"
    assert display_path("/srv/photos") == "/srv/photos" and display_path("") == ""
    tab = TrainerTab()
    qtbot.addWidget(tab)
    # The shipped checkpoint is named, not shown by where the installation keeps it; training gets its path.
    assert tab.init_edit.text() == INSTALLED_MODEL_LABEL
    tab.set_data_folder(crops)
    assert tab.data_edit.text() == "~/crops"
    config = tab.build_config()
    assert Path(config.init_backbone).is_absolute() and Path(config.init_backbone).name == "ghostfacenetv2.pt"
    assert list(config.data_path) == [str(crops)]
    # A checkpoint of the user's own is shown as it is, under home with "~", and read back whole.
    tab.form.show_init_backbone(tmp_path / "runs" / "best_backbone.pt")
    assert tab.init_edit.text() == "~/runs/best_backbone.pt"
    assert tab.build_config().init_backbone == str(tmp_path / "runs" / "best_backbone.pt")
    tab.use_installed_model_as_start()
    assert tab.init_edit.text() == INSTALLED_MODEL_LABEL
