"""The one typed, validated settings model, and its JSON file.

Sections: camera, detection, recognition, tracking, display, ui, plugins, events. Every field has a title,
a description (the GUI shows it as a tooltip) and bounds. The file carries a ``schema_version``. A bad
or partial file never crashes the app: the bad keys are dropped with a warning, the rest is kept, and
the unreadable original is backed up beside it.
"""

from __future__ import annotations

import difflib
import enum
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core._atomic import atomic_write_text
from core.detection import list_detectors
from core.embedding import parse_spec
from core.errors import GhostFaceError

__all__ = [
    "CameraSettings",
    "DetectionSettings",
    "DisplaySettings",
    "EventSettings",
    "LoadResult",
    "PluginSettings",
    "StoreSettings",
    "REBUILD_FIELDS",
    "Rebuild",
    "RecognitionSettings",
    "SCHEMA_VERSION",
    "Settings",
    "SettingsError",
    "TrackingSettings",
    "UiSettings",
    "describe_validation_error",
    "effective_threshold",
    "load_settings",
    "rebuilds",
    "save_settings",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class Rebuild(enum.StrEnum):
    """A part of the engine that a settings change forces to be built again (every other field is live).

    Each field that forces one says so where it is declared (``rebuilds=`` in its metadata), and
    :func:`rebuilds` is the one reading of that table: the pipeline, the live worker and the gallery
    worker all ask it what a change means.
    """

    SOURCE = "source"  # the frame source is opened again
    DETECTOR = "detector"  # the detector model is built again
    EMBEDDER = "embedder"  # the embedder is built again, and the gallery embedded with it
    GALLERY = "gallery"  # another gallery folder is opened


def _rebuilds(*parts: Rebuild) -> dict[str, Any]:
    return {"rebuilds": [str(p) for p in parts]}


class SettingsError(GhostFaceError, ValueError):
    """A settings change names a setting that does not exist (a typo), or breaks a rule between fields."""


class _Section(BaseModel):
    # Frozen: a settings object is an immutable snapshot that can be handed to the worker thread.
    # Extra keys are refused: a typo must be an error, never a change that silently does nothing (an old
    # file's unknown keys are dropped with a warning by load_settings before validation).
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class CameraSettings(_Section):
    """Where the frames come from: a camera, a video file or an image folder, and how fast."""

    source: str = Field(
        "0",
        title="Source",
        description="Camera index (0, 1, ...), a video file or a folder of images.",
        json_schema_extra=_rebuilds(Rebuild.SOURCE),
    )
    width: int = Field(
        1280,
        ge=160,
        le=7680,
        title="Width",
        description="Requested capture width in pixels.",
        json_schema_extra=_rebuilds(Rebuild.SOURCE),
    )
    height: int = Field(
        720,
        ge=120,
        le=4320,
        title="Height",
        description="Requested capture height in pixels.",
        json_schema_extra=_rebuilds(Rebuild.SOURCE),
    )
    max_fps: float = Field(
        30.0,
        ge=1.0,
        le=240.0,
        title="Maximum frames per second",
        description="Process at most this many frames per second.",
    )
    loop_video: bool = Field(
        True,
        title="Loop video files",
        description="Start a video file again when it ends.",
        json_schema_extra=_rebuilds(Rebuild.SOURCE),
    )


class DetectionSettings(_Section):
    """The face detector and what counts as a face."""

    detector: str = Field(
        "yunet",
        title="Detector",
        description="Face detector model.",
        json_schema_extra=_rebuilds(Rebuild.DETECTOR),
    )
    score_threshold: float = Field(
        0.6,
        ge=0.05,
        le=0.99,
        title="Detection threshold",
        description="Minimum detector confidence for a face.",
    )
    nms_threshold: float = Field(
        0.3,
        ge=0.05,
        le=0.95,
        title="Overlap (NMS) threshold",
        description="Boxes overlapping more than this are merged.",
    )
    min_face_px: int = Field(
        24,
        ge=8,
        le=1024,
        title="Minimum face size",
        description="Faces smaller than this (pixels, shorter box side) are ignored.",
    )
    max_side_px: int = Field(
        640,
        ge=160,
        le=4096,
        title="Detection resolution",
        description="Frames larger than this (longer side) are scaled down for detection only; recognition uses full resolution.",
    )


class RecognitionSettings(_Section):
    """The embedder and how a face is matched to a gallery person."""

    embedder: str = Field(
        "sface",
        title="Embedder",
        description="Face embedding model: sface, or ghostfacenetv2[:checkpoint].",
        json_schema_extra=_rebuilds(Rebuild.EMBEDDER),
    )
    device: str = Field(
        "cpu",
        pattern=r"^(cpu|cuda(:\d+)?)$",
        title="Device",
        description="Where PyTorch models run: cpu, or cuda:N.",
        json_schema_extra=_rebuilds(Rebuild.DETECTOR, Rebuild.EMBEDDER),
    )
    threshold_from_model: bool = Field(
        True,
        title="Use the model's threshold",
        description="Match with the similarity threshold calibrated for the embedder (each model has its "
        "own scale: SFace 0.36, GhostFaceNetV2 the value stored in its checkpoint). Turn off to set "
        "the threshold by hand.",
    )
    similarity_threshold: float = Field(
        0.36,
        ge=-1.0,
        le=1.0,
        title="Similarity threshold",
        description="Cosine similarity at or above which a face is taken to be a gallery person (used when "
        "'Use the model's threshold' is off, or the model has no calibrated threshold).",
    )
    margin: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        title="Top-1/top-2 margin",
        description="The best person must beat the second best by this much, or the face is Unknown.",
    )
    use_mean_embedding: bool = Field(
        False, title="Match person means", description="Also compare with each person's mean embedding."
    )


def effective_threshold(recognition: RecognitionSettings, suggested: float | None) -> float:
    """The similarity threshold to match with: the model's own (``suggested``) unless the user set one."""
    if recognition.threshold_from_model and suggested is not None:
        return suggested
    return recognition.similarity_threshold


class TrackingSettings(_Section):
    """How faces are followed from frame to frame and named by a vote over each track."""

    iou_threshold: float = Field(
        0.3, ge=0.05, le=0.95, title="Track overlap", description="Minimum box overlap to continue a track."
    )
    max_missed_frames: int = Field(
        15, ge=0, le=600, title="Track patience", description="Frames a track survives without a detection."
    )
    reembed_interval: int = Field(
        10,
        ge=1,
        le=300,
        title="Re-embed every N frames",
        description="A confirmed track is embedded again only this often (or when its face gets better).",
    )
    vote_window: int = Field(
        7, ge=1, le=100, title="Vote window", description="Recent decisions a track's identity is voted over."
    )
    confirm_votes: int = Field(
        2, ge=1, le=100, title="Votes to confirm", description="Agreeing votes needed before a name is shown."
    )


class DisplaySettings(_Section):
    """What the live view draws over the video."""

    show_boxes: bool = Field(True, title="Show boxes", description="Draw a box around every face.")
    show_landmarks: bool = Field(False, title="Show landmarks", description="Draw the five facial landmarks.")
    show_similarity: bool = Field(
        True, title="Show similarity", description="Print the similarity beside each name."
    )
    show_track_ids: bool = Field(False, title="Show track ids", description="Print each face's track number.")
    mirror: bool = Field(
        False, title="Mirror camera", description="Show the picture mirrored, like a mirror."
    )


class UiSettings(_Section):
    """How the window looks."""

    theme: str = Field(
        "dark",
        pattern=r"^(dark|light|system)$",
        title="Theme",
        description="Dark, light, or follow the system's light or dark mode.",
    )


class EventSettings(_Section):
    """When recognition events fire, and how long the history keeps them."""

    cooldown_s: float = Field(
        60.0,
        ge=0.0,
        le=86400.0,
        title="Per-person cooldown",
        description="Seconds before the same person can be recognized again.",
    )
    unknown_after_s: float = Field(
        2.0,
        ge=0.0,
        le=3600.0,
        title="Unknown after",
        description="Seconds a face must stay unknown before an event.",
    )
    left_after_s: float = Field(
        3.0, ge=0.0, le=3600.0, title="Left after", description="Seconds unseen before a person has left."
    )
    unknown_min_face_px: int = Field(
        40,
        ge=0,
        le=1024,
        title="Unknown: minimum face size",
        description="An unknown face smaller than this (pixels, shorter box side) fires no event: too small "
        "to tell who it is.",
    )
    unknown_min_sharpness: float = Field(
        15.0,
        ge=0.0,
        le=5000.0,
        title="Unknown: minimum face quality",
        description="An unknown face less sharp than this fires no event (variance of the Laplacian of the "
        "face at 48 px: blurred or dark false detections measure under 10, real faces 20 to 1500).",
    )
    history_max_days: int = Field(
        30, ge=1, le=3650, title="Keep history (days)", description="Older events are removed."
    )
    history_max_mb: int = Field(
        200, ge=1, le=100000, title="History size limit (MB)", description="Oldest events go first."
    )
    attach_frame: bool = Field(
        True,
        title="Attach the frame to events",
        description="Give plugins (the snapshot saver) the whole frame as JPEG with each recognized or unknown face.",
    )
    source_label: str = Field(
        "",
        max_length=100,
        title="Source label",
        description='A name for what the camera watches ("Front door"), given to plugins with every event.',
    )
    emit_updates: bool = Field(
        False,
        title="Send updated events",
        description="Tell plugins when a visit gets a better match or a larger face (an 'updated' event).",
    )
    update_min_gain: float = Field(
        0.05,
        ge=0.0,
        le=2.0,
        title="Update after similarity gain",
        description="How much better the match must get before an 'updated' event.",
    )


class PluginSettings(_Section):
    """Which plugins run, their settings, and how failures and floods are handled."""

    enabled: dict[str, bool] = Field(
        default_factory=dict, title="Enabled plugins", description="Plugin name to enabled state."
    )
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, title="Plugin settings", description="Plugin name to its settings."
    )
    max_failures: int = Field(
        5,
        ge=1,
        le=1000,
        title="Disable after failures",
        description="A plugin failing this many times in a row is disabled.",
    )
    queue_size: int = Field(
        64, ge=1, le=10000, title="Plugin queue size", description="Events waiting per plugin."
    )
    drain_s: float = Field(
        5.0,
        ge=0.0,
        le=600.0,
        title="Drain time at exit",
        description="Seconds plugins get at exit to take their queued events; the rest count as dropped.",
    )
    isolate: bool = Field(
        True,
        title="Run plugins in their own process",
        description="Folder and installed plugins run in a process of their own, so a crash cannot end the app.",
    )
    load_timeout_s: float = Field(
        10.0,
        ge=0.5,
        le=600.0,
        title="Plugin load time limit",
        description="A plugin that takes longer than this to import is skipped.",
    )


class StoreSettings(_Section):
    """Where the gallery and the history live: this computer, or a shared PostgreSQL server."""

    backend: Literal["embedded", "postgresql"] = Field(
        "embedded",
        title="Gallery and history",
        description="embedded: this computer (a folder and SQLite). postgresql: a shared server.",
        json_schema_extra=_rebuilds(Rebuild.GALLERY),
    )
    url: str = Field(
        "",
        max_length=1000,
        title="Server",
        description="postgresql://user@host/database (or service=NAME); the password goes in ~/.pgpass.",
        json_schema_extra=_rebuilds(Rebuild.GALLERY),
    )
    station: str = Field(
        "",
        max_length=100,
        title="Station name",
        description='This computer\'s name in the shared history ("Front door"). Empty: the host name.',
    )

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str) -> str:
        # A password written here would sit in plain text in the settings file: it is dropped, and
        # libpq finds it in its passfile or service file instead.
        from core.store.postgres import strip_password

        try:
            clean, had = strip_password(value)
        except GhostFaceError as exc:
            raise ValueError(str(exc)) from None
        if had:
            log.warning(
                "the store address held a password: it was removed and is not saved; put it in libpq's "
                "passfile (~/.pgpass) or a service file (see docs/stations.md)"
            )
        return clean

    def station_name(self) -> str:
        """The station's name: the one set, or this computer's host name."""
        import socket

        return self.station.strip() or socket.gethostname() or "station"


class Settings(_Section):
    """Every setting of the app, in sections; an immutable snapshot (change it with :meth:`replace`)."""

    schema_version: int = SCHEMA_VERSION
    gallery_dir: str = Field(
        "",
        title="Gallery folder",
        description="One folder per person. Empty: the default folder.",
        json_schema_extra=_rebuilds(Rebuild.GALLERY),
    )
    camera: CameraSettings = Field(default_factory=CameraSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    recognition: RecognitionSettings = Field(default_factory=RecognitionSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)

    @model_validator(mode="after")
    def _rules_between_fields(self) -> Settings:
        problems = [message for _section, _fields, message in cross_field_problems(self)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def replace(self, **sections: Any) -> Settings:
        """A copy with some values changed, validated: ``s.replace(recognition={"margin": 0.1})``.

        Raises:
            SettingsError: a key names no setting (``camera={"sourc": "1"}``): the typo is named with
                the settings that exist.
            pydantic.ValidationError: a value is out of bounds, or breaks a rule between fields.
        """
        data = self.model_dump()
        for key, value in sections.items():
            if key not in Settings.model_fields:
                raise SettingsError(
                    f"unknown setting {key!r}; the settings are: {', '.join(Settings.model_fields)}"
                )
            if isinstance(value, BaseModel):
                value = value.model_dump()
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                section_type = Settings.model_fields[key].annotation
                if (
                    isinstance(section_type, type)
                    and issubclass(section_type, BaseModel)
                    and key != "plugins"
                ):
                    unknown = sorted(set(value) - set(section_type.model_fields))
                    if unknown:
                        known = list(section_type.model_fields)
                        close = difflib.get_close_matches(unknown[0], known, n=1)
                        hint = f" (did you mean '{key}.{close[0]}'?)" if close else ""
                        raise SettingsError(
                            f"unknown setting '{key}.{unknown[0]}'{hint}; {key} has: {', '.join(known)}"
                        )
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return Settings.model_validate(data)


def describe_validation_error(exc: ValidationError) -> str:
    """Each bad value as ``section.key = value: what is wrong``, on one line (no pydantic dump)."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())) or "settings"
        shown = f" = {error['input']!r}" if "input" in error and not isinstance(error["input"], dict) else ""
        parts.append(f"{where}{shown}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def cross_field_problems(settings: Settings) -> list[tuple[str, tuple[str, ...], str]]:
    """The rules between fields that ``settings`` breaks, as (section, fields involved, message).

    Each field's own bounds are checked by its declaration; these are the contradictions that no
    single field can see, and the model names that must be registered.
    """
    problems: list[tuple[str, tuple[str, ...], str]] = []
    tracking = settings.tracking
    if tracking.confirm_votes > tracking.vote_window:
        # A name needs confirm_votes agreeing decisions among the last vote_window: with more votes
        # than the window holds, nobody is ever named and every face is re-embedded on every frame.
        problems.append(
            (
                "tracking",
                ("confirm_votes", "vote_window"),
                f"tracking.confirm_votes ({tracking.confirm_votes}) is more than tracking.vote_window "
                f"({tracking.vote_window}): nobody could ever be named",
            )
        )
    detectors = list_detectors()
    if settings.detection.detector not in detectors:
        problems.append(
            (
                "detection",
                ("detector",),
                f"unknown detector {settings.detection.detector!r}; known detectors: {', '.join(detectors)}",
            )
        )
    try:
        parse_spec(settings.recognition.embedder)
    except GhostFaceError as exc:
        problems.append(("recognition", ("embedder",), str(exc)))
    return problems


def _rebuild_table() -> dict[tuple[str, ...], frozenset[Rebuild]]:
    """(section, field) or (field,) -> what a change of it rebuilds, read from the fields' metadata."""

    def declared(info: Any) -> frozenset[Rebuild]:
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        return frozenset(Rebuild(p) for p in extra.get("rebuilds", ()))

    table: dict[tuple[str, ...], frozenset[Rebuild]] = {}
    for name, info in Settings.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            for field, sub_info in section.model_fields.items():
                if parts := declared(sub_info):
                    table[(name, field)] = parts
        elif parts := declared(info):
            table[(name,)] = parts
    return table


# What each field forces to be rebuilt, as declared on the fields above.
REBUILD_FIELDS: dict[tuple[str, ...], frozenset[Rebuild]] = _rebuild_table()


def rebuilds(old: Settings, new: Settings) -> frozenset[Rebuild]:
    """What must be built again to go from ``old`` to ``new`` settings; every other change is live."""
    parts: set[Rebuild] = set()
    for path, needs in REBUILD_FIELDS.items():
        a: Any = old
        b: Any = new
        for name in path:
            a, b = getattr(a, name), getattr(b, name)
        if a != b:
            parts |= needs
    return frozenset(parts)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What :func:`load_settings` found: the settings, and the warnings a user should see."""

    settings: Settings
    warnings: tuple[str, ...] = ()
    backup: Path | None = None


def _drop_bad_keys(data: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Validate field by field, keeping every good value and naming every bad one."""
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key not in Settings.model_fields:
            warnings.append(f"unknown setting '{key}' ignored")
            continue
        section_type = Settings.model_fields[key].annotation
        if isinstance(section_type, type) and issubclass(section_type, BaseModel):
            if not isinstance(value, dict):
                warnings.append(f"setting section '{key}' is not an object; defaults used")
                continue
            good: dict[str, Any] = {}
            for sub_key, sub_value in value.items():
                if sub_key not in section_type.model_fields:
                    warnings.append(f"unknown setting '{key}.{sub_key}' ignored")
                    continue
                try:
                    section_type.model_validate({**good, sub_key: sub_value})
                except ValidationError as exc:
                    msg = exc.errors()[0].get("msg", "invalid")
                    warnings.append(
                        f"setting '{key}.{sub_key}' = {sub_value!r} is invalid ({msg}); default used"
                    )
                    continue
                good[sub_key] = sub_value
            clean[key] = good
        else:
            try:
                Settings.model_validate({key: value})
            except ValidationError:
                warnings.append(f"setting '{key}' = {value!r} is invalid; default used")
                continue
            clean[key] = value
    return clean


def _drop_contradictions(clean: dict[str, Any], warnings: list[str]) -> None:
    """Reset to their defaults the fields of ``clean`` that break a rule between fields.

    Also those that name an unknown model; a warning each, so that one contradiction in an old file
    costs only itself.
    """
    values: dict[str, Any] = {}
    for name, value in clean.items():
        kind = Settings.model_fields[name].annotation
        is_section = isinstance(kind, type) and issubclass(kind, BaseModel)
        values[name] = kind.model_validate(value) if is_section else value  # type: ignore[union-attr]
    for section, fields, message in cross_field_problems(Settings.model_construct(**values)):
        if isinstance(clean.get(section), dict):
            for field in fields:
                clean[section].pop(field, None)
        warnings.append(f"{message}; default used")


def load_settings(path: Path) -> LoadResult:
    """Read settings, never raising for a bad file.

    A missing file gives the defaults silently. An unreadable or invalid one gives the defaults for
    what is bad, keeps what is good, backs the original up as ``<name>.bad-<time>`` and returns
    warnings that the GUI shows.
    """
    path = Path(path)
    if not path.exists():
        return LoadResult(Settings())
    warnings: list[str] = []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("the top level is not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        warnings.append(f"settings file {path} could not be read ({exc}); defaults used")
        raw = None
    clean: dict[str, Any] = {}
    if raw is not None:
        version = raw.pop("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            warnings.append(f"settings schema version {version} is not {SCHEMA_VERSION}; known keys kept")
        clean = _drop_bad_keys(raw, warnings)
    _drop_contradictions(clean, warnings)
    backup = None
    if warnings:
        backup = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            shutil.copy2(path, backup)
        except OSError:
            backup = None
        # Not a warning here: the caller shows them (the GUI in its banner, the CLI once on stderr).
        for w in warnings:
            log.info("%s", w)
    return LoadResult(Settings.model_validate(clean), tuple(warnings), backup)


def save_settings(settings: Settings, path: Path) -> None:
    """Write settings atomically (a crash mid-write keeps the old file)."""
    atomic_write_text(Path(path), settings.model_dump_json(indent=2) + "\n")
