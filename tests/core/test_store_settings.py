"""The store section of the settings: the embedded default, and no password ever saved."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.settings import Rebuild, Settings, load_settings, rebuilds, save_settings


def test_the_embedded_store_is_the_default() -> None:
    store = Settings().store
    assert (store.backend, store.url) == ("embedded", "")
    assert store.station_name()  # the host name when none is set


def test_a_password_in_the_store_address_is_dropped_with_a_warning_and_never_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        settings = Settings().replace(
            store={
                "backend": "postgresql",
                "url": "postgresql://door1:s3cret@db.lan:5433/ghostface?sslmode=verify-full",
            }
        )
    assert "held a password" in caplog.text and "~/.pgpass" in caplog.text
    assert settings.store.url == "postgresql://door1@db.lan:5433/ghostface?sslmode=verify-full"
    path = tmp_path / "settings.json"
    save_settings(settings, path)
    assert "s3cret" not in path.read_text()
    # A file edited by hand with a password in it loses the password on loading.
    path.write_text(path.read_text().replace("door1@", "door1:again@"))
    assert "again" not in load_settings(path).settings.store.url
    keyword = Settings().replace(store={"url": "host=db.lan password=x dbname=g sslmode=require"}).store.url
    assert "password" not in keyword and "sslmode=require" in keyword


def test_changing_the_store_reopens_the_gallery() -> None:
    old = Settings()
    assert Rebuild.GALLERY in rebuilds(old, old.replace(store={"backend": "postgresql"}))
    assert rebuilds(old, old.replace(store={"station": "Back door"})) == frozenset()
