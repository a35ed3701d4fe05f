"""The runtime probe: versions and the devices PyTorch can use, read once off the GUI thread."""

from __future__ import annotations

import time

from core.environment import RuntimeProbe, probe_runtime


def test_the_probe_lists_the_cpu_first_and_the_libraries() -> None:
    info = probe_runtime()
    assert info.devices[0] == "cpu" and all(d.startswith("cuda:") for d in info.devices[1:])
    labels = [label for label, _ in info.rows]
    assert labels[:2] == ["Python", "System"] and "OpenCV" in labels and "PyTorch" in labels


def test_the_background_probe_runs_once_and_then_answers() -> None:
    probe = RuntimeProbe()
    assert probe.result() is None
    probe.start()
    probe.start()
    deadline = time.monotonic() + 60
    while probe.result() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    result = probe.result()
    assert result is not None and result.devices[0] == "cpu"
