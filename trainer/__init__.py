"""GhostFaceNetV2 training: ArcFace-family losses, distillation, the loop, checkpoints and export.

Never imports Qt or the app (checked by import-linter). Entry points: :class:`trainer.loop.Trainer`
with a :class:`trainer.config.TrainConfig` (``load_config``), and ``ghostface train`` / ``ghostface align``
(:mod:`trainer.cli`).
"""
