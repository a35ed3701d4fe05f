"""What this machine runs the engine with: library versions and the devices PyTorch can use.

Reading it imports torch, which takes seconds the first time, so a GUI reads it once, on a background
thread (:class:`RuntimeProbe`), and the settings' device list and the diagnostics view share the result.
"""

from __future__ import annotations

import platform
import threading
from dataclasses import dataclass

__all__ = ["RuntimeInfo", "RuntimeProbe", "probe_runtime"]


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    """Versions and accelerators.

    Attributes:
        rows: (label, text) pairs to show, in order (Python, System, OpenCV, PyTorch, CUDA, ...).
        devices: where PyTorch models can run: ``"cpu"`` first, then ``"cuda:N"`` for each GPU.
    """

    rows: tuple[tuple[str, str], ...]
    devices: tuple[str, ...]


def probe_runtime() -> RuntimeInfo:
    """Read the versions and devices now (imports torch: seconds, the first time)."""
    rows = [("Python", platform.python_version()), ("System", f"{platform.system()} {platform.release()}")]
    try:
        import cv2

        rows.append(("OpenCV", cv2.__version__))
    except ImportError as exc:
        rows.append(("OpenCV", f"unavailable ({exc})"))
    devices = ["cpu"]
    try:
        import torch
    except ImportError as exc:
        rows.append(("PyTorch", f"unavailable ({exc})"))
        return RuntimeInfo(tuple(rows), tuple(devices))
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices += [f"cuda:{i}" for i in range(gpus)]
    built = f"with CUDA {torch.version.cuda}" if torch.version.cuda else "for CPU only"
    cuda = ", ".join(f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(gpus))
    rows.append(("PyTorch", torch.__version__))
    rows.append(("CUDA", cuda or f"not available (this PyTorch is built {built})"))
    rows.append(("CPU threads", str(torch.get_num_threads())))
    return RuntimeInfo(tuple(rows), tuple(devices))


class RuntimeProbe:
    """Runs :func:`probe_runtime` once on a background thread; :meth:`result` is None until it is done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: RuntimeInfo | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the probe (a second call does nothing)."""
        with self._lock:
            if self._thread is not None:
                return
            # A daemon thread: a driver stuck while listing GPUs must not keep the process alive.
            self._thread = threading.Thread(target=self._run, name="runtime-probe", daemon=True)
            self._thread.start()

    def result(self) -> RuntimeInfo | None:
        """The probe's result, or None while it is still running (or was not started)."""
        with self._lock:
            return self._result

    def _run(self) -> None:
        info = probe_runtime()
        with self._lock:
            self._result = info
