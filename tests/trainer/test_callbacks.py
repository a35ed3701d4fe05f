"""Trainer callbacks: an unknown event is a clear error; a failing callback is logged and the others run."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from trainer.callbacks import EVENTS, Callbacks


def test_an_unknown_event_is_a_clear_error_listing_the_known_ones() -> None:
    callbacks = Callbacks()
    with pytest.raises(KeyError, match="on_epoch_ends.*known events: on_train_start"):
        callbacks.add_callback("on_epoch_ends", lambda trainer: None)
    with pytest.raises(KeyError, match="on_batch"):
        callbacks.run_callbacks("on_batch", object())  # type: ignore[arg-type]


def test_a_failing_callback_is_logged_and_the_next_ones_still_run(caplog: pytest.LogCaptureFixture) -> None:
    callbacks = Callbacks()
    seen: list[str] = []

    def broken(trainer: Any) -> None:
        raise RuntimeError("progress display fell over")

    callbacks.add_callback("on_epoch_end", broken)
    callbacks.add_callback("on_epoch_end", lambda trainer: seen.append("after"))
    with caplog.at_level(logging.ERROR, logger="trainer.callbacks"):
        callbacks.run_callbacks("on_epoch_end", object())  # type: ignore[arg-type]
    assert seen == ["after"]
    assert "broken" in caplog.text and "progress display fell over" in caplog.text
    # A removed callback no longer runs.
    callbacks.remove_callback("on_epoch_end", broken)
    callbacks.run_callbacks("on_epoch_end", object())  # type: ignore[arg-type]
    assert seen == ["after", "after"]
    assert "on_epoch_end" in EVENTS
