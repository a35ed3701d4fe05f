"""Step 2 of the trainer tab: the training form, filled from the shipped fine-tuning recipe.

The fields (data, run folder, mode, width, the checkpoint to start from, the recipe's options, epochs,
learning rate, batch) sit over a base config: the built-in recipe (:mod:`trainer.recipes`) or a loaded
JSON file. :meth:`TrainingForm.build_config` turns them into a validated :class:`trainer.config.TrainConfig`;
:meth:`TrainingForm.values` and :meth:`TrainingForm.restore` are what the tab remembers between sessions.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.trainer_options import RecipeOptions
from app.user_dirs import display_path
from trainer.recipes import finetune_recipe

__all__ = ["MODES", "TrainingForm", "default_output_dir"]

log = logging.getLogger(__name__)

MODES = (
    ("ArcFace (labelled folders)", "arcface"),
    ("Distillation from SFace (recommended)", "distill"),
    ("Both", "both"),
)
RECIPE_LABEL = "the shipped fine-tuning recipe (the fields above change it)"
# "Start from" names the shipped checkpoint instead of showing where the installation keeps it.
INSTALLED_MODEL_LABEL = "Installed model (GhostFaceNetV2, shipped)"


def default_output_dir() -> Path:
    """A new run folder under the user data folder, named after the time (never an existing one)."""
    from core import paths

    base = paths.data_dir() / "training" / time.strftime("run-%Y%m%d-%H%M%S")
    path, k = base, 1
    while path.exists():  # two starts within a second
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def _installed_model() -> Path | None:
    from core.modelstore import default_store

    return default_store().locate("ghostfacenetv2")


def _add_row(form: QFormLayout, label: str, field: QWidget, *buttons: QPushButton) -> None:
    """Add a row to ``form``: ``field`` taking the spare width, ``buttons`` beside it."""
    row = QHBoxLayout()
    row.addWidget(field, 1)
    for button in buttons:
        row.addWidget(button)
    form.addRow(label, row)


class TrainingForm(QGroupBox):
    """The training form (a group box the tab lays out).

    Signals:
        run_dir_changed(): the run folder was edited.
        message(str): a line for the tab's log.
    """

    run_dir_changed = Signal()
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("2. Training: fine-tune the installed model", parent)
        self._loaded_config: dict[str, Any] | None = None
        form = QFormLayout(self)
        self._add_model_rows(form)
        self.options = RecipeOptions(form)
        self._add_schedule_rows(form)
        self.output_edit.textChanged.connect(self.run_dir_changed)
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)
        self.show_recipe(finetune_recipe())

    @property
    def uses_config_file(self) -> bool:
        """Whether a JSON config was loaded (it is then taken as written, not fitted to the data)."""
        return self._loaded_config is not None

    def _add_model_rows(self, form: QFormLayout) -> None:
        """Data, run folder, mode, width and the checkpoint to start from."""
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("aligned 112×112 crops, <person>/<crop>.jpg: align photos above")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_data)
        _add_row(form, "Training data", self.data_edit, browse)

        self.output_edit = QLineEdit(display_path(default_output_dir()))
        form.addRow("Run folder", self.output_edit)

        self.mode_combo = QComboBox()
        for text, value in MODES:
            self.mode_combo.addItem(text, value)
        form.addRow("Mode", self.mode_combo)

        self.width_combo = QComboBox()
        for width in ("1.0", "1.3"):
            self.width_combo.addItem(f"GhostFaceNetV2-{width}", float(width))
        form.addRow("Model width", self.width_combo)

        # Fine-tuning: start from a trained backbone instead of random weights.
        self.init_edit = QLineEdit()
        self.init_edit.setPlaceholderText("empty: random weights (train from scratch, needs far more data)")
        self.init_edit.setToolTip(
            "A backbone checkpoint to fine-tune (its width and stride must match the model above)"
        )
        pick_init = QPushButton("Browse…")
        pick_init.clicked.connect(self._browse_init)
        installed = QPushButton("Installed model")
        installed.setToolTip("Fine-tune the GhostFaceNetV2 that ships with the app")
        installed.clicked.connect(self.use_installed_model_as_start)
        _add_row(form, "Start from", self.init_edit, pick_init, installed)

    def _add_schedule_rows(self, form: QFormLayout) -> None:
        """Epochs, learning rate, batch size, and a config file instead of the fields."""
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        form.addRow("Epochs", self.epochs_spin)

        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(1e-5, 1.0)
        self.lr_spin.setSingleStep(0.0005)
        form.addRow("Learning rate (AdamW)", self.lr_spin)

        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(2, 4096)
        form.addRow("Batch size", self.batch_spin)

        self.config_label = QLabel(RECIPE_LABEL)
        self.config_label.setWordWrap(True)
        load = QPushButton("Load config…")
        load.clicked.connect(self._browse_config)
        _add_row(form, "Recipe", self.config_label, load)

    # -- configuration ----------------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        """The run's output folder, as typed in the form."""
        return Path(self.output_edit.text().strip()).expanduser()

    def set_data_folder(self, path: str | Path) -> None:
        """Put ``path`` in the training data field."""
        self.data_edit.setText(display_path(path))

    @property
    def data_folder(self) -> str:
        """The training data field, ``~`` expanded ("" when empty)."""
        data = self.data_edit.text().strip()
        return str(Path(data).expanduser()) if data else ""

    @property
    def init_backbone(self) -> str:
        """The checkpoint "Start from" means: a path, the installed model's for its name, "" for none."""
        text = self.init_edit.text().strip()
        if text == INSTALLED_MODEL_LABEL:
            installed = _installed_model()
            return str(installed) if installed else ""
        return str(Path(text).expanduser()) if text else ""

    def show_init_backbone(self, path: str | Path | None) -> None:
        """Show ``path`` in "Start from": the installed model by its name, another file with ``~``."""
        installed = _installed_model()
        if path and installed and Path(path).expanduser().resolve() == installed.resolve():
            self.init_edit.setText(INSTALLED_MODEL_LABEL)
        else:
            self.init_edit.setText(display_path(path or ""))

    def _browse_data(self) -> None:
        start = self.data_folder or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Folder of aligned face crops", start)
        if folder:
            self.set_data_folder(folder)

    def _browse_init(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Backbone checkpoint to fine-tune", self.init_backbone, "PyTorch (*.pt *.pth)"
        )
        if path:
            self.show_init_backbone(path)

    def use_installed_model_as_start(self) -> None:
        """Fill "Start from" with the shipped GhostFaceNetV2 (width 1.0, stride 2) and match the width."""
        path = _installed_model()
        if path is None:
            QMessageBox.warning(self, "No installed model", "No GhostFaceNetV2 checkpoint is installed.")
            return
        self.show_init_backbone(path)
        self.width_combo.setCurrentIndex(max(0, self.width_combo.findData(1.0)))

    @Slot()
    def _on_mode_changed(self, *_args: Any) -> None:
        self.options.set_uses_teacher(self.mode_combo.currentData() in ("distill", "both"))

    def show_recipe(self, recipe: dict[str, Any]) -> None:
        """Fill the form with the built-in fine-tuning recipe, starting from the installed model."""
        self.mode_combo.setCurrentIndex([v for _t, v in MODES].index(recipe["mode"]))
        self.epochs_spin.setValue(recipe["epochs"])
        self.lr_spin.setValue(recipe["optimizer"]["adamw"]["base_lr"])
        self.batch_spin.setValue(recipe["batch_size"])
        self.options.load(recipe)
        self.show_init_backbone(_installed_model())
        self._on_mode_changed()

    def _browse_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training config", str(Path.home()), "JSON (*.json)")
        if path:
            self.load_config_file(path)

    def load_config_file(self, path: str | Path) -> bool:
        """Fill the form from a JSON config; a bad file is reported and changes nothing."""
        from trainer.config import ConfigError, load_config

        try:
            config = load_config(path)
        except ConfigError as exc:
            QMessageBox.warning(self, "Cannot use this config", str(exc))
            self.message.emit(f"config not loaded: {exc}")
            return False
        self._loaded_config = config.to_dict()
        self.set_data_folder(config.data_path[0])
        self.output_edit.setText(display_path(config.output_dir))
        self.mode_combo.setCurrentIndex([v for _t, v in MODES].index(config.mode))
        index = self.width_combo.findData(config.backbone.width)
        if index < 0:
            self.width_combo.addItem(f"GhostFaceNetV2-{config.backbone.width}", config.backbone.width)
            index = self.width_combo.count() - 1
        self.width_combo.setCurrentIndex(index)
        self.epochs_spin.setValue(config.epochs)
        self.lr_spin.setValue(config.optimizer.base_lr)
        self.batch_spin.setValue(config.batch_size)
        self.show_init_backbone(config.init_backbone)
        self.options.load(self._loaded_config)
        self.config_label.setText(str(path))
        return True

    def build_config(self) -> Any:
        """The :class:`trainer.config.TrainConfig` the form describes (over a loaded config, else the recipe).

        Raises:
            trainer.config.ConfigError: the form is incomplete or invalid.
        """
        from trainer.config import ConfigError, config_from_dict

        base: dict[str, Any] = dict(self._loaded_config or finetune_recipe())
        data = self.data_folder
        if not data:
            raise ConfigError("choose the training data first: align photos, or use your gallery")
        paths = list(base.get("data_path") or [])
        if not paths or paths[0] != data:
            paths = [data]
        base["data_path"] = paths
        base["output_dir"] = str(self.run_dir)
        base["mode"] = self.mode_combo.currentData()
        base["epochs"] = self.epochs_spin.value()
        base["batch_size"] = self.batch_spin.value()
        backbone = dict(base.get("backbone") or {})
        backbone["width"] = self.width_combo.currentData()
        base["backbone"] = backbone
        base["init_backbone"] = self.init_backbone or None
        optimizer = dict(base.get("optimizer") or {"name": "adamw"})
        name = optimizer.get("name", "adamw")
        section = dict(optimizer.get(name) or {})
        section["base_lr"] = self.lr_spin.value()
        optimizer[name] = section
        base["optimizer"] = optimizer
        self.options.apply(base)
        return config_from_dict(base)

    # -- memory -----------------------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """The form as plain values (what the tab remembers)."""
        return {
            "data": self.data_folder,
            "mode": self.mode_combo.currentData(),
            "width": self.width_combo.currentData(),
            "init": self.init_backbone,
            "epochs": self.epochs_spin.value(),
            "lr": self.lr_spin.value(),
            "batch": self.batch_spin.value(),
            "config": self._loaded_config,
            "config_label": self.config_label.text(),
            **self.options.values(),
        }

    def restore(self, values: dict[str, Any]) -> None:
        """Show remembered values (from :meth:`values`); what is missing or damaged stays as it is."""
        self._loaded_config = values.get("config") if isinstance(values.get("config"), dict) else None
        self.config_label.setText(str(values.get("config_label") or RECIPE_LABEL))
        self.set_data_folder(str(values.get("data") or ""))
        modes = [v for _t, v in MODES]
        if values.get("mode") in modes:
            self.mode_combo.setCurrentIndex(modes.index(values["mode"]))
        index = self.width_combo.findData(values.get("width"))
        if index >= 0:
            self.width_combo.setCurrentIndex(index)
        self.show_init_backbone(str(values.get("init") or ""))
        for spin, key in ((self.epochs_spin, "epochs"), (self.batch_spin, "batch"), (self.lr_spin, "lr")):
            if isinstance(values.get(key), int | float):
                spin.setValue(values[key])
        self.options.restore(values)
