"""GhostFaceNetV2 training: ArcFace-family losses, distillation, the loop, checkpoints and export.

Never imports Qt or the app (checked by import-linter). Entry points: :class:`trainer.loop.Trainer`
with a :class:`trainer.config.TrainConfig` (``load_config``); :func:`trainer.prepare.align_folder` for a
set of aligned crops. The ``ghostface train`` / ``ghostface align`` commands live in :mod:`cli.train`.
"""
