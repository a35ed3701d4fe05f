"""GhostFaceNetV2 training: ArcFace-family losses, distillation, the loop, checkpoints and export.

Never imports Qt or the app (checked by import-linter).
"""
