"""Typed records that cross a boundary: between pipeline stages, threads, packages and plugins.

Every record is a frozen, slotted dataclass so that it can be handed to another thread without copying
and without anyone mutating it under the reader's feet. Arrays are documented where they are created.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Detection",
    "EventKind",
    "Face",
    "FrameResult",
    "HeldBack",
    "Match",
    "RecognitionEvent",
    "StageTimings",
    "UnknownReason",
    "EVENT_API_VERSION",
    "parse_kind",
]

# Bumped whenever RecognitionEvent or the plugin API changes; a plugin declares the version it needs
# (``API_VERSION``) and is refused by an older app. 2: visits (visit_id, first_seen, duration_s), the
# ``updated`` kind, the source label, ``to_dict`` keys ``stream_time`` and ``wall_time``.
EVENT_API_VERSION = 2


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected face.

    Attributes:
        box: ``(4,) float32``, pixels, ``x1, y1, x2, y2`` in the frame the detector saw.
        score: detector confidence in [0, 1].
        landmarks: ``(5, 2) float32``, pixels: left eye, right eye, nose tip, left mouth corner,
            right mouth corner ("left" meaning image-left).
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        """The box's width in pixels."""
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        """The box's height in pixels."""
        return float(self.box[3] - self.box[1])


class HeldBack(enum.StrEnum):
    """The rule that kept a face Unknown."""

    NO_GALLERY = "no_gallery"  # nobody to compare with (empty gallery, or one made by another model)
    THRESHOLD = "threshold"  # the best candidate is below the similarity threshold
    MARGIN = "margin"  # the best candidate does not beat the second best by the margin
    VOTES = "votes"  # the latest decisions name someone, but not yet with enough agreeing votes


@dataclass(frozen=True, slots=True)
class UnknownReason:
    """Why a face is Unknown: the best candidate and the rule that held it back.

    Attributes:
        rule: the rule that held the candidate back.
        candidate: the best gallery person, or None (empty gallery).
        similarity: the candidate's similarity.
        threshold: the similarity threshold in force.
        margin: the top-1/top-2 margin in force.
        second_person: the second-best person, or None.
        second_similarity: the second-best person's similarity (-1 when there is none).
        votes: ``VOTES`` only: the track's recent decisions for the candidate.
        votes_needed: ``VOTES`` only: the agreeing decisions needed before a name is shown.
    """

    rule: HeldBack
    candidate: str | None = None
    similarity: float = -1.0
    threshold: float = 0.0
    margin: float = 0.0
    second_person: str | None = None
    second_similarity: float = -1.0
    votes: int = 0
    votes_needed: int = 0

    def describe(self) -> str:
        """One sentence for people: the best candidate and why it was not taken."""
        if self.rule is HeldBack.NO_GALLERY or self.candidate is None:
            return "Nobody in the gallery to compare with."
        best = f"Best candidate: {self.candidate} ({self.similarity:.2f})"
        if self.rule is HeldBack.THRESHOLD:
            return f"{best}, below the similarity threshold {self.threshold:.2f}."
        if self.rule is HeldBack.MARGIN:
            return (
                f"{best}, too close to {self.second_person} ({self.second_similarity:.2f}): "
                f"the margin {self.margin:.2f} is not reached."
            )
        if self.votes < self.votes_needed:
            return (
                f"{best}, not yet confirmed: {self.votes} of the {self.votes_needed} agreeing votes needed."
            )
        return f"{best}, not yet confirmed: the track's recent decisions are split."


@dataclass(frozen=True, slots=True)
class Match:
    """The gallery decision for one embedding.

    ``person`` is None for "Unknown": below the similarity threshold, or too close a call between
    the two best people (top-1/top-2 margin); ``reason`` then says which, and who came closest.
    """

    person: str | None
    similarity: float
    second_person: str | None = None
    second_similarity: float = -1.0
    reason: UnknownReason | None = None

    @property
    def known(self) -> bool:
        """Whether the embedding was matched to a person."""
        return self.person is not None


@dataclass(frozen=True, slots=True)
class Face:
    """A face as the live view shows it: where it is, which track it belongs to, who it is."""

    detection: Detection
    track_id: int
    match: Match
    # True when this frame computed a fresh embedding for the face (not reused from its track).
    embedded: bool = False
    # Frames the track has existed for; a young track is shown as tentative.
    track_age: int = 0
    # The number of the unknown person this face was re-identified as ("Unknown #12"), or 0: not
    # numbered (known, or not yet settled as Unknown). Kept for the whole run of a source.
    unknown_id: int = 0

    @property
    def person(self) -> str | None:
        """The matched person, or None for "Unknown"."""
        return self.match.person

    @property
    def similarity(self) -> float:
        """The similarity to the best person in the gallery."""
        return self.match.similarity

    @property
    def label(self) -> str:
        """The name shown for the face: the person, "Unknown #12" once numbered, else "Unknown"."""
        if self.match.person is not None:
            return self.match.person
        return f"Unknown #{self.unknown_id}" if self.unknown_id else "Unknown"


@dataclass(frozen=True, slots=True)
class StageTimings:
    """Milliseconds spent per stage on one frame.

    ``match_ms`` includes deciding the live tracks again after a threshold or gallery change;
    ``track_ms`` covers tracking, the shot-change check and face sharpness, and also the event work
    (which encodes the whole frame as JPEG when events attach it, ``events.attach_frame``).
    """

    decode_ms: float = 0.0
    detect_ms: float = 0.0
    align_ms: float = 0.0
    embed_ms: float = 0.0
    match_ms: float = 0.0
    track_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        """The sum of the stages, in milliseconds."""
        return self.decode_ms + self.detect_ms + self.align_ms + self.embed_ms + self.match_ms + self.track_ms

    def as_dict(self) -> dict[str, float]:
        """The stages' milliseconds by short name (``decode``, ``detect``, ...), without the total."""
        return {
            "decode": self.decode_ms,
            "detect": self.detect_ms,
            "align": self.align_ms,
            "embed": self.embed_ms,
            "match": self.match_ms,
            "track": self.track_ms,
        }


class EventKind(enum.StrEnum):
    """What happened. Spelled ``recognized`` everywhere (``"recognised"`` is rejected, not guessed)."""

    RECOGNIZED = "recognized"
    UPDATED = "updated"
    UNKNOWN = "unknown"
    LEFT = "left"


def parse_kind(value: EventKind | str) -> EventKind:
    """The :class:`EventKind` named ``value``.

    Raises:
        ValueError: not a kind (``"recognised"`` included), with the known kinds in the message.
    """
    if isinstance(value, EventKind):
        return value
    try:
        return EventKind(value)
    except ValueError:
        known = ", ".join(k.value for k in EventKind)
        raise ValueError(f"unknown event kind {value!r}; known kinds: {known}") from None


@dataclass(frozen=True, slots=True)
class RecognitionEvent:
    """The only thing a plugin sees. Events come from tracks, not from frames.

    A person's presence in view is a *visit*: its ``recognized``, any ``updated`` and its ``left`` share one
    ``visit_id``, ``first_seen`` and (growing) ``duration_s``.

    Attributes:
        kind: ``recognized`` (a person came into view), ``updated`` (a better match or a larger face of
            the same visit; only when ``EventSettings.emit_updates`` is on), ``unknown`` (a track stayed
            unknown for a while) or ``left`` (a recognized person has not been seen for a set time).
        time: wall-clock seconds since the epoch when the event happened (``to_dict()["wall_time"]``).
        source: what was being watched (camera index, file path), as text.
        track_id: the track the event is about (a visit can span several tracks; this is the latest).
        person: the person's name, or None for an unknown face.
        similarity: cosine similarity of the decision, in [-1, 1].
        box: ``(x1, y1, x2, y2)`` in pixels of the frame, as plain floats.
        thumbnail: a JPEG of the face, longer side at most 96 px, or empty bytes.
        frame_index: the index of the frame in its stream (restarts when a video loops).
        stream_time: seconds into the stream (video position, or since the camera started);
            ``to_dict()["stream_time"]``.
        api_version: :data:`EVENT_API_VERSION` at the time the event was made.
        visit_id: one id per visit, shared by its ``recognized``, ``updated`` and ``left``; for ``unknown``
            one per track. Unique across runs.
        first_seen: wall-clock seconds when the visit (or the unknown track) was first seen.
        duration_s: seconds in view so far (stream time from the first to the latest sighting); on
            ``left`` the whole visit.
        source_label: the name the user gave the source ("Front door"), or "".
        frame_jpeg: the whole frame as JPEG, for the snapshot plugin; empty unless
            ``EventSettings.attach_frame`` is on, and only on ``recognized`` and ``unknown`` events.
            Never written to the history and left out of :meth:`to_dict`.
    """

    kind: EventKind
    time: float
    source: str
    track_id: int
    person: str | None
    similarity: float
    box: tuple[float, float, float, float]
    thumbnail: bytes = b""
    frame_index: int = 0
    stream_time: float = 0.0
    api_version: int = EVENT_API_VERSION
    visit_id: str = ""
    first_seen: float = 0.0
    duration_s: float = 0.0
    source_label: str = ""
    # Kept out of repr and comparisons: a frame's JPEG is large and says nothing about the event.
    frame_jpeg: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        # A plain string is accepted when it is a known kind; a misspelling ("recognised") fails here,
        # where the author made it, instead of never matching anything later.
        if not isinstance(self.kind, EventKind):
            object.__setattr__(self, "kind", parse_kind(self.kind))

    def to_dict(self, *, with_thumbnail: bool = False) -> dict[str, object]:
        """A JSON-ready dict (the ``ghostface run --events`` line format)."""
        out: dict[str, object] = {
            "kind": str(self.kind),
            "person": self.person,
            "similarity": round(float(self.similarity), 4),
            "track": self.track_id,
            "frame": self.frame_index,
            "stream_time": round(self.stream_time, 3),
            "wall_time": self.time,
            "box": [round(v, 1) for v in self.box],
            "source": self.source,
            "source_label": self.source_label,
            "visit_id": self.visit_id,
            "first_seen": self.first_seen,
            "duration_s": round(self.duration_s, 3),
            "api_version": self.api_version,
        }
        if with_thumbnail:
            import base64

            out["thumbnail_jpeg_base64"] = base64.b64encode(self.thumbnail).decode("ascii")
        return out


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything the pipeline learned from one frame.

    The frame itself is carried so that the GUI can draw it; the overlay is drawn from ``faces``,
    never burned into ``frame`` by the engine.

    Attributes:
        frame: ``(H, W, 3) uint8`` BGR, the frame as decoded.
        frame_index: index of the frame in its stream.
        timestamp: seconds into the stream.
        faces: every face in the frame, with its track and identity.
        timings: per-stage milliseconds.
        events: recognition events this frame produced; on the first frame of a new stream (a looping
            video's next pass) they begin with the ``left`` events that ended the previous one.
        dropped_frames: frames the source skipped since the last result (latest frame wins).
        stream_id: the stream the frame belongs to (:attr:`core.capture.Frame.stream_id`); a change
            means the previous stream ended and everyone in it left.
    """

    frame: np.ndarray
    frame_index: int
    timestamp: float
    faces: tuple[Face, ...] = ()
    timings: StageTimings = field(default_factory=StageTimings)
    events: tuple[RecognitionEvent, ...] = ()
    dropped_frames: int = 0
    stream_id: int = 0
