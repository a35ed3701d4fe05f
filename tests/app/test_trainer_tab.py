"""The trainer tab: a real (tiny) training run in its worker thread, stopped, resumed and adopted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.trainer_tab import TrainerTab


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
