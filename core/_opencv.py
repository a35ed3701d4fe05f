"""OpenCV's own console output, kept for what matters."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import cv2

__all__ = ["quiet_opencv"]

_lock = threading.Lock()


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Only OpenCV errors are printed inside the block.

    OpenCV 5's DNN engine warns "setPreferableTarget: Targets are not supported by the new graph
    engine" each time a network is built (FaceDetectorYN sets a target itself): harmless, and it
    printed on every command. The level is global, hence the lock and the restore.
    """
    logging = cv2.utils.logging
    with _lock:
        previous = logging.getLogLevel()
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)
        try:
            yield
        finally:
            logging.setLogLevel(previous)
