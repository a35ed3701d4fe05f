"""Recognition events from tracks (EventEmitter) and their isolated dispatch to plugins (EventBus).

The emitter turns the per-frame faces of the tracker into a few events: one ``recognized`` when a person
comes into view, one ``left`` when they have been gone for a while, one ``unknown`` per track that stays
unknown. Every decision is taken on stream time (the video position), so the same video always gives the
same events; the events' ``time`` is the wall clock.

The bus gives each plugin its own dispatch thread and bounded queue: ``publish`` never blocks, a plugin
that raises is logged, counted and after N failures in a row disabled, a plugin that hangs only loses its
own events (counted as dropped) and is abandoned at ``stop``. An isolated plugin's dispatch thread talks to
the plugin's own process (:mod:`core._plugin_host`); a crash of that process is one more failure.

:func:`create_event_bus` is the one place that assembles the bus from the settings (discovery, the
history recorder, isolation, safe mode), for the app and the command line alike.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import inspect
import itertools
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np

from core import paths
from core.plugins import DiscoveredPlugin, LoadedPlugin, PluginContext
from core.quality import face_sharpness
from core.settings import EventSettings, Settings
from core.types import EventKind, Face, RecognitionEvent

__all__ = [
    "BusContext",
    "EventBus",
    "PluginTestResult",
    "create_event_bus",
    "list_plugins",
    "plugin_report",
    "test_plugin",
    "EventEmitter",
    "PluginContext",
    "PluginState",
    "PluginStatus",
    "THUMBNAIL_PX",
    "encode_thumbnail",
    "make_test_event",
]

log = logging.getLogger(__name__)

# Longer side of an event's face thumbnail; small enough for the history to hold many thousands.
THUMBNAIL_PX = 96
_THUMB_MARGIN = 0.15  # the box grown by this on every side, so the thumbnail shows the whole head
_THUMB_QUALITY = 85
_FRAME_QUALITY = 90


def encode_thumbnail(frame: np.ndarray, box: Sequence[float], size: int = THUMBNAIL_PX) -> bytes:
    """A small JPEG of the face box (with a margin), longer side ``size``; empty when the box is empty.

    Args:
        frame: ``(H, W, 3) uint8`` BGR.
        box: ``x1, y1, x2, y2`` pixels.
        size: longer side of the thumbnail in pixels.
    """
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    mx, my = (x2 - x1) * _THUMB_MARGIN, (y2 - y1) * _THUMB_MARGIN
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    if right <= left or bottom <= top:
        return b""
    crop = frame[top:bottom, left:right]
    scale = size / max(crop.shape[:2])
    if scale < 1.0:
        new_size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, new_size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(crop), [cv2.IMWRITE_JPEG_QUALITY, _THUMB_QUALITY])
    return buf.tobytes() if ok else b""


def _box_tuple(box: np.ndarray | Sequence[float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in list(box)[:4])
    return (x1, y1, x2, y2)


def new_visit_id() -> str:
    """A visit id: random, so that visits of different runs and stations never collide."""
    return uuid.uuid4().hex[:16]


class _AttachedFrame:
    """The frame as a JPEG for the events that attach it.

    Encoded at most once per frame, and only for a frame that has such an event.
    """

    def __init__(self, frame: np.ndarray, enabled: bool) -> None:
        self._frame = frame
        self._enabled = enabled
        self._jpeg: bytes | None = None

    def get(self) -> bytes:
        if self._jpeg is None:
            self._jpeg = b""
            if self._enabled:
                ok, buf = cv2.imencode(".jpg", self._frame, [cv2.IMWRITE_JPEG_QUALITY, _FRAME_QUALITY])
                self._jpeg = buf.tobytes() if ok else b""
        return self._jpeg


@dataclass(slots=True)
class _TrackState:
    last_seen: float
    unknown_since: float | None = None
    unknown_emitted: bool = False
    unknown_wall: float = 0.0


@dataclass(slots=True)
class _Presence:
    """A person in view: from their first sighting until they have been gone for ``left_after_s``."""

    track_id: int
    started: float
    last_seen: float
    last_wall: float
    last_frame: int
    box: tuple[float, float, float, float]
    similarity: float
    thumbnail: bytes
    visit_id: str
    first_wall: float
    # What the last recognized/updated event reported, to decide whether a sighting is "better".
    reported_similarity: float = -1.0
    reported_area: float = 0.0


class EventEmitter:
    """Turns the tracker's faces into recognition events, frame by frame.

    Rules (all on stream time):

    - ``recognized``: a person comes into view (a track's identity is a confirmed person and that
      person is not already in view). A person seen on a new track while still in view (a track lost
      and regained) stays one presence. Not emitted again within ``cooldown_s`` of the person's last
      ``recognized``: the presence then starts silently.
    - ``left``: a person in view has not been seen for more than ``left_after_s``. Every presence ends
      with one ``left``, also one whose ``recognized`` the cooldown held back (so that an attendance log
      learns the last-seen time). Its time, frame, box and stream time are those of the last sighting.
    - ``unknown``: once per track that has been unknown for ``unknown_after_s`` without a break, when
      its face is at least ``unknown_min_face_px`` large and ``unknown_min_sharpness`` sharp (a small or
      blurred face is no one a person could recognize either). A numbered unknown person
      (``Face.unknown_id``) is one person: not reported again within ``cooldown_s``, like a known one.

    - ``updated`` (only with ``emit_updates``): the visit's match got better by ``update_min_gain`` or
      its face grew by half, compared with what was last reported.

    Each presence is a visit: its events share a ``visit_id`` and carry ``first_seen`` and
    ``duration_s``. Stream time going backwards (a looping video, a new file) is a new stream: it ends
    every visit with ``left`` and starts afresh, cooldowns included. Not thread-safe: one emitter
    belongs to one pipeline.

    Args:
        settings: the event settings (cooldown, delays, whether to attach the frame, the source label).
        source: what is being watched, copied into every event.
        source_label: the user's name for the source; default ``settings.source_label``.
    """

    def __init__(self, settings: EventSettings, source: str, source_label: str | None = None) -> None:
        self._settings = settings
        self._source = str(source)
        self._label = settings.source_label if source_label is None else source_label
        self._tracks: dict[int, _TrackState] = {}
        self._present: dict[str, _Presence] = {}
        self._last_recognized: dict[str, float] = {}
        # Stream time of the last ``unknown`` event per numbered unknown person (``Face.unknown_id``).
        self._last_unknown: dict[int, float] = {}
        self._last_time: float | None = None

    @property
    def settings(self) -> EventSettings:
        """The event settings in use."""
        return self._settings

    @property
    def source(self) -> str:
        """What is being watched, copied into every event."""
        return self._source

    @property
    def present(self) -> tuple[str, ...]:
        """The people in view now, in order of arrival."""
        return tuple(self._present)

    @property
    def source_label(self) -> str:
        """The user's name for the source, copied into every event."""
        return self._label

    def apply_settings(self, settings: EventSettings) -> None:
        """Use new delays from the next frame on; who is in view is kept."""
        if settings.source_label != self._settings.source_label:
            self._label = settings.source_label
        self._settings = settings

    def reset(self) -> None:
        """Forget everything (no events); for a new source use a new emitter instead."""
        self._tracks.clear()
        self._present.clear()
        self._last_recognized.clear()
        self._last_unknown.clear()
        self._last_time = None

    def update(
        self, faces: Sequence[Face], frame: np.ndarray, frame_index: int, stream_time: float
    ) -> list[RecognitionEvent]:
        """The events one frame produces (usually none).

        Args:
            faces: every face of the frame, with its track and identity.
            frame: ``(H, W, 3) uint8`` BGR, for the thumbnails (and the attached frame).
            frame_index: index of the frame in its source.
            stream_time: seconds into the source.
        """
        events: list[RecognitionEvent] = []
        if self._last_time is not None and stream_time < self._last_time:
            log.debug("stream time went back from %.3f to %.3f: new pass", self._last_time, stream_time)
            events.extend(self.flush(frame_index, self._last_time))
            self.reset()
        self._last_time = stream_time
        now = time.time()
        attached = _AttachedFrame(frame, self._settings.attach_frame)
        seen_people: set[str] = set()
        for face in faces:
            tid = int(face.track_id)
            track = self._tracks.get(tid)
            if track is None:
                track = self._tracks[tid] = _TrackState(stream_time)
            track.last_seen = stream_time
            if face.person is None:
                event = self._unknown_face(face, track, frame, frame_index, stream_time, now, attached)
            else:
                track.unknown_since = None
                seen_people.add(face.person)
                event = self._known_face(face, frame, frame_index, stream_time, now, attached)
            if event is not None:
                events.append(event)
        events.extend(self._gone(seen_people, stream_time))
        return events

    def _unknown_face(
        self,
        face: Face,
        track: _TrackState,
        frame: np.ndarray,
        frame_index: int,
        stream_time: float,
        now: float,
        attached: _AttachedFrame,
    ) -> RecognitionEvent | None:
        """An ``unknown`` event once a track has stayed unnamed for ``unknown_after_s`` (see the class)."""
        s = self._settings
        if track.unknown_since is None:
            track.unknown_since = stream_time
            track.unknown_wall = now
        if track.unknown_emitted or stream_time - track.unknown_since < s.unknown_after_s:
            return None
        if min(face.detection.width, face.detection.height) < s.unknown_min_face_px or (
            face_sharpness(frame, face.detection.box) < s.unknown_min_sharpness
        ):
            return None  # not yet: the track may come closer or into focus
        track.unknown_emitted = True
        number = face.unknown_id
        if number:
            last = self._last_unknown.get(number)
            if last is not None and stream_time - last < s.cooldown_s:
                log.debug("unknown #%d back on a new track within the cooldown: no event", number)
                return None
            self._last_unknown[number] = stream_time
        box = _box_tuple(face.detection.box)
        return RecognitionEvent(
            kind=EventKind.UNKNOWN,
            time=now,
            source=self._source,
            track_id=int(face.track_id),
            person=None,
            similarity=float(face.similarity),
            box=box,
            thumbnail=encode_thumbnail(frame, box),
            frame_index=frame_index,
            stream_time=stream_time,
            visit_id=new_visit_id(),
            first_seen=track.unknown_wall,
            duration_s=stream_time - track.unknown_since,
            source_label=self._label,
            frame_jpeg=attached.get(),
        )

    def _known_face(
        self,
        face: Face,
        frame: np.ndarray,
        frame_index: int,
        stream_time: float,
        now: float,
        attached: _AttachedFrame,
    ) -> RecognitionEvent | None:
        """A person's ``recognized`` (new visit, out of cooldown) or ``updated`` (better view) event."""
        s = self._settings
        person = str(face.person)
        tid = int(face.track_id)
        box = _box_tuple(face.detection.box)
        presence = self._present.get(person)
        if presence is not None:
            presence.track_id = tid
            presence.last_seen = stream_time
            presence.last_wall = now
            presence.last_frame = frame_index
            presence.box = box
            presence.similarity = float(face.similarity)
            if s.emit_updates and presence.reported_area > 0 and self._better(presence, box):
                presence.thumbnail = encode_thumbnail(frame, box)
                return self._visit_event(EventKind.UPDATED, person, presence, now, attached.get())
            return None
        thumbnail = encode_thumbnail(frame, box)
        presence = self._present[person] = _Presence(
            tid,
            stream_time,
            stream_time,
            now,
            frame_index,
            box,
            float(face.similarity),
            thumbnail,
            new_visit_id(),
            now,
        )
        last = self._last_recognized.get(person)
        if last is not None and stream_time - last < s.cooldown_s:
            log.debug("%s back in view %.1f s after being recognized: cooldown", person, stream_time - last)
            return None
        self._last_recognized[person] = stream_time
        return self._visit_event(EventKind.RECOGNIZED, person, presence, now, attached.get())

    def _gone(self, seen_people: set[str], stream_time: float) -> list[RecognitionEvent]:
        """``left`` for the people out of view longer than ``left_after_s``; old tracks forgotten."""
        s = self._settings
        events = []
        for person in [p for p in self._present if p not in seen_people]:
            presence = self._present[person]
            if stream_time - presence.last_seen > s.left_after_s:
                events.append(self._left(person, presence))
                del self._present[person]
        # Forget tracks long gone; a track id is never reused by the tracker, so this only frees memory.
        horizon = max(s.left_after_s, s.unknown_after_s) + 1.0
        for tid in [t for t, st in self._tracks.items() if stream_time - st.last_seen > horizon]:
            del self._tracks[tid]
        return events

    def flush(self, frame_index: int, stream_time: float) -> list[RecognitionEvent]:
        """End of the stream: a ``left`` for everyone still in view.

        Args:
            frame_index: index of the last frame (unused for the events, which carry the last sighting;
                kept so that the call reads like :meth:`update`).
            stream_time: seconds into the source at the end.
        """
        del frame_index, stream_time  # the left events describe each person's last sighting
        events = [self._left(person, presence) for person, presence in self._present.items()]
        self._present.clear()
        self._tracks.clear()
        return events

    def _better(self, p: _Presence, box: tuple[float, float, float, float]) -> bool:
        area = max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
        return p.similarity >= p.reported_similarity + self._settings.update_min_gain or (
            area >= 1.5 * p.reported_area
        )

    def _visit_event(
        self, kind: EventKind, person: str, p: _Presence, now: float, frame_jpeg: bytes
    ) -> RecognitionEvent:
        p.reported_similarity = p.similarity
        p.reported_area = max(0.0, p.box[2] - p.box[0]) * max(0.0, p.box[3] - p.box[1])
        return self._presence_event(kind, person, p, now, frame_jpeg)

    def _left(self, person: str, p: _Presence) -> RecognitionEvent:
        # Dated by the last sighting: the person left then, not when the absence was noticed.
        return self._presence_event(EventKind.LEFT, person, p, p.last_wall, b"")

    def _presence_event(
        self, kind: EventKind, person: str, p: _Presence, when: float, frame_jpeg: bytes
    ) -> RecognitionEvent:
        """An event of a person's visit, as it stands: one visit id from recognized to left."""
        return RecognitionEvent(
            kind=kind,
            time=when,
            source=self._source,
            track_id=p.track_id,
            person=person,
            similarity=p.similarity,
            box=p.box,
            thumbnail=p.thumbnail,
            frame_index=p.last_frame,
            stream_time=p.last_seen,
            visit_id=p.visit_id,
            first_seen=p.first_wall,
            duration_s=p.last_seen - p.started,
            source_label=self._label,
            frame_jpeg=frame_jpeg,
        )


def make_test_event(source: str = "test", person: str = "Test Person") -> RecognitionEvent:
    """A synthetic ``recognized`` event (with a drawn thumbnail) for a plugin's "Send test event"."""
    frame = np.full((120, 120, 3), 200, np.uint8)
    cv2.circle(frame, (60, 60), 40, (90, 160, 220), -1)
    cv2.circle(frame, (45, 50), 6, (40, 40, 40), -1)
    cv2.circle(frame, (75, 50), 6, (40, 40, 40), -1)
    cv2.ellipse(frame, (60, 75), (18, 9), 0, 0, 180, (40, 40, 40), 3)
    ok, buf = cv2.imencode(".jpg", frame)
    jpeg = buf.tobytes() if ok else b""
    return RecognitionEvent(
        kind=EventKind.RECOGNIZED,
        time=time.time(),
        source=source,
        track_id=0,
        person=person,
        similarity=1.0,
        box=(20.0, 20.0, 100.0, 100.0),
        thumbnail=encode_thumbnail(frame, (20, 20, 100, 100)),
        frame_jpeg=jpeg,
    )


# ---------------------------------------------------------------------------------------------- bus


class PluginState(enum.StrEnum):
    """A plugin's health as the Plugins dialog shows it."""

    OK = "ok"  # its last call succeeded (or none was made yet)
    FAILED = "failed"  # its last call raised; it still gets events
    DISABLED = "disabled"  # switched off after too many failures in a row, or its on_start raised
    DEGRADED = "degraded"  # it runs, but reports a problem of its own (e.g. its file cannot be written)
    BROKEN = "broken"  # could not be loaded at all (only in discovery results shown by the GUI)
    REFUSED = "refused"  # not loaded on purpose: a file another user could have written


@dataclass(frozen=True, slots=True)
class PluginStatus:
    """A snapshot of one plugin on the bus.

    Attributes:
        name: the plugin's name.
        origin: where it came from (see :class:`core.plugins.Origin`).
        enabled: whether the user has it switched on.
        state: its health.
        last_error: the last failure, ``"hook: Type: message"``, or "".
        calls: events handed to ``on_event`` so far.
        failures: calls of any hook that raised, in total.
        dropped: events not delivered: its queue was full, or they were still queued when the drain
            time at stop ran out.
        consecutive_failures: failures since its last success.
        running: whether its dispatch thread is alive.
        abandoned: it did not stop in time and its thread was left behind (its process killed).
        isolated: it runs in a process of its own.
        problems: what was wrong with the user's settings for it.
        busy_hook: the hook it is in now, or "".
        busy_s: seconds it has been in that hook (a stuck plugin shows here, not as "ok").
        problem: what the plugin itself reports through its optional ``problem`` attribute while it
            runs but cannot do all its work (state :attr:`PluginState.DEGRADED`), or "".
    """

    name: str
    origin: str
    enabled: bool
    state: PluginState
    last_error: str = ""
    calls: int = 0
    failures: int = 0
    dropped: int = 0
    consecutive_failures: int = 0
    running: bool = False
    abandoned: bool = False
    isolated: bool = False
    problems: tuple[str, ...] = ()
    busy_hook: str = ""
    busy_s: float = 0.0
    problem: str = ""

    @property
    def stuck(self) -> bool:
        """In one call for longer than :data:`STUCK_AFTER_S`."""
        return self.busy_s >= STUCK_AFTER_S


# A call this long is reported as "busy" (dialog, plugins list) instead of "ok".
STUCK_AFTER_S = 5.0

# How often a plugin that reports a problem is asked again while no event comes (seconds).
PROBLEM_POLL_S = 1.0


@dataclass(frozen=True, slots=True)
class BusContext:
    """What the app gives every plugin through :meth:`EventBus.start`.

    Attributes:
        data_dir: the app's data folder; each plugin gets ``<data_dir>/plugin-data/<name>``.
            Default :func:`core.paths.data_dir`.
        extras: anything else the app wants plugins to reach (read-only).
    """

    data_dir: Path | None = None
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


_STOP = object()


@dataclass(frozen=True, slots=True)
class _Restart:
    context: PluginContext


@dataclass(frozen=True, slots=True)
class _Test:
    event: RecognitionEvent


def _describe(hook: str, exc: BaseException) -> str:
    from core._plugin_host import PluginCrashed, RemoteError

    if isinstance(exc, RemoteError):  # already "Type: message" as raised in the plugin's process
        return f"{hook}: {exc.one_line}"
    if isinstance(exc, PluginCrashed):
        return f"{hook}: crashed: {exc}"
    text = str(exc).strip().splitlines()
    return f"{hook}: {type(exc).__name__}: {text[0]}" if text else f"{hook}: {type(exc).__name__}"


class _Worker:
    """One plugin's queue, thread and counters."""

    def __init__(self, bus: EventBus, plugin: LoadedPlugin, queue_size: int, max_failures: int) -> None:
        self.bus = bus
        self.plugin = plugin
        self.name = plugin.name
        self.queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self.max_failures = max_failures
        self.lock = threading.Lock()
        self.enabled = plugin.enabled
        self.state = PluginState.OK
        self.last_error = ""
        self.calls = 0
        self.failures = 0
        self.dropped = 0
        self.consecutive = 0
        self.started = False  # its on_start succeeded
        self.abandoned = False
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.settings = plugin.settings
        self.loop: asyncio.AbstractEventLoop | None = None  # for async hooks, made on first use
        self.busy: tuple[str, float] | None = None  # (hook, monotonic start) while in a call
        self.problem = ""  # the plugin's own `problem`, read on its thread after each call

    # -- state, read from any thread
    def status(self) -> PluginStatus:
        with self.lock:
            return PluginStatus(
                name=self.name,
                origin=self.plugin.origin,
                enabled=self.enabled,
                state=self.state,
                last_error=self.last_error,
                calls=self.calls,
                failures=self.failures,
                dropped=self.dropped,
                consecutive_failures=self.consecutive,
                running=self.thread is not None and self.thread.is_alive(),
                abandoned=self.abandoned,
                isolated=hasattr(self.plugin.plugin, "terminate"),
                problems=self.plugin.problems,
                busy_hook=self.busy[0] if self.busy else "",
                busy_s=time.monotonic() - self.busy[1] if self.busy else 0.0,
                problem=self.problem,
            )

    @property
    def accepting(self) -> bool:
        return self.enabled and self.state is not PluginState.DISABLED and not self.stopping

    def launch(self, context: PluginContext) -> None:
        if self.thread is not None:
            return
        self.thread = threading.Thread(
            target=self._run, args=(context,), name=f"plugin-{self.name}", daemon=True
        )
        self.thread.start()

    def offer(self, item: object) -> bool:
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            with self.lock:
                self.dropped += 1
                dropped = self.dropped
            # Logged at 1, 10, 100, ... so that a hung plugin does not flood the log.
            if dropped == 1 or (dropped >= 10 and str(dropped).rstrip("0") == "1"):
                log.warning("plugin %r is not keeping up: %d events dropped so far", self.name, dropped)
            return False

    def discard_queued(self) -> int:
        """Empty the queue; the events in it count as dropped. Returns how many there were."""
        undelivered = 0
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, RecognitionEvent | _Test):
                undelivered += 1
        with self.lock:
            self.dropped += undelivered
        return undelivered

    # -- the dispatch thread
    def _run(self, context: PluginContext) -> None:
        self._start(context)
        while True:
            try:
                # While the plugin reports a problem it may solve on its own (a retry on a timer),
                # its state is read again every second, not only after the next event.
                item = self.queue.get(timeout=PROBLEM_POLL_S if self.problem else None)
            except queue.Empty:
                self._read_problem()
                continue
            if self.abandoned:
                return
            if item is _STOP:
                if self.started:
                    self._call("on_stop")
                if self.loop is not None:
                    self.loop.close()
                return
            if isinstance(item, _Restart):
                if self.started:
                    self._call("on_stop")
                self._start(item.context)
                continue
            if isinstance(item, _Test):
                # A test event reaches a plugin the user switched off, but not one that could not start.
                if self.started:
                    self._call("on_event", item.event)
                continue
            # Not `accepting`: events queued before stop() are still delivered.
            if self.enabled and self.state is not PluginState.DISABLED and self.started:
                self._call("on_event", item)

    def _start(self, context: PluginContext) -> None:
        self.started = False
        if self._call("on_start", context):
            self.started = True
            return
        with self.lock:
            self.state = PluginState.DISABLED
        log.warning("plugin %r disabled: its on_start failed (%s)", self.name, self.last_error)
        self.bus._notify(self)

    def _call(self, hook: str, *args: object) -> bool:
        fn = getattr(self.plugin.plugin, hook, None)
        if not callable(fn):
            return True
        self.busy = (hook, time.monotonic())
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                # An async hook runs to completion on the plugin's own loop, kept for its whole life
                # so that what on_start creates can still be awaited in on_event.
                if self.loop is None:
                    self.loop = asyncio.new_event_loop()
                self.loop.run_until_complete(result)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin (even sys.exit) must not end the app's thread
            self.busy = None
            if self.abandoned:  # killed by stop(): its status already says why
                return False
            self._failed(hook, exc)
            return False
        self.busy = None
        changed = False
        with self.lock:
            if hook == "on_event":
                self.calls += 1
            self.consecutive = 0
            if self.state is PluginState.FAILED:
                self.state = PluginState.DEGRADED if self.problem else PluginState.OK
                changed = True
        if changed:
            self.bus._notify(self)
        self._read_problem()
        return True

    def _read_problem(self) -> None:
        """Take over the plugin's own ``problem`` (a one-line text, or None when all is well)."""
        try:
            value = getattr(self.plugin.plugin, "problem", None)
        except Exception:  # noqa: BLE001 - a plugin's property that raises is not worth a failure
            value = None
        problem = " ".join(str(value).split())[:500] if value else ""
        with self.lock:
            changed = problem != self.problem
            # Logged when a problem starts or ends, not each time its text changes (a count in it).
            begins_or_ends = bool(problem) != bool(self.problem)
            self.problem = problem
            if self.state is PluginState.OK and problem:
                self.state = PluginState.DEGRADED
            elif self.state is PluginState.DEGRADED and not problem:
                self.state = PluginState.OK
        if begins_or_ends:
            if problem:
                log.warning("plugin %r reports: %s", self.name, problem)
            else:
                log.warning("plugin %r no longer reports a problem", self.name)
        if changed:
            self.bus._notify(self)

    def _failed(self, hook: str, exc: BaseException) -> None:
        message = _describe(hook, exc)
        remote = getattr(exc, "details", "")
        if remote:  # the traceback from the plugin's own process says more than ours
            log.error("plugin %r failed in %s:\n%s", self.name, hook, remote.rstrip())
        else:
            log.error("plugin %r failed in %s", self.name, hook, exc_info=exc)
        with self.lock:
            if hook == "on_event":
                self.calls += 1
            self.failures += 1
            self.consecutive += 1
            self.last_error = message
            disable = self.consecutive >= self.max_failures and self.state is not PluginState.DISABLED
            self.state = (
                PluginState.DISABLED if disable or self.state is PluginState.DISABLED else PluginState.FAILED
            )
        if disable:
            log.warning("plugin %r disabled after %d failures in a row", self.name, self.max_failures)
        self.bus._notify(self)
        self._read_problem()


class EventBus:
    """Dispatches events to plugins, each on its own thread with a bounded queue.

    ``publish`` is safe from any thread and never blocks (call it from the capture or recognition
    thread). A status listener is called on a plugin's dispatch thread whenever its state or enabled
    flag changes; a GUI relays it to its own thread with a signal, or polls :meth:`status`.

    Args:
        plugins: the plugins to run; those not enabled get no thread until enabled.
        queue_size: events waiting per plugin before new ones are dropped for it.
        max_failures: failures in a row after which a plugin is disabled.
        drain_s: the default time :meth:`stop` gives plugins to take what is queued.
    """

    def __init__(
        self,
        plugins: Sequence[LoadedPlugin],
        queue_size: int = 64,
        max_failures: int = 5,
        drain_s: float = 5.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, not {queue_size}")
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, not {max_failures}")
        names = [p.name for p in plugins]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"plugin names must be unique; repeated: {', '.join(duplicates)}")
        self._queue_size = queue_size
        self._max_failures = max_failures
        self.drain_s = drain_s
        # Replaced, never mutated, when plugins are added: publish() iterates a dict nobody changes.
        self._workers = {p.name: _Worker(self, p, queue_size, max_failures) for p in plugins}
        self.discovered: tuple[Any, ...] = ()  # what discovery found, broken and refused included
        self._late: collections.deque[RecognitionEvent] | None = None  # see hold_for_late_plugins
        self._listeners: dict[int, Callable[[PluginStatus], None]] = {}
        self._listener_ids = itertools.count()
        self._lock = threading.Lock()
        self._context = BusContext()
        self._started_at = 0.0
        self._running = False
        self._stopped = False

    @property
    def running(self) -> bool:
        """Whether the bus has been started and not yet stopped."""
        return self._running

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the plugins on the bus."""
        return tuple(self._workers)

    def start(self, context: BusContext | None = None) -> None:
        """Start a dispatch thread for every enabled plugin; each first runs its ``on_start``.

        Raises:
            RuntimeError: the bus was already stopped (make a new one).
        """
        with self._lock:
            if self._stopped:
                raise RuntimeError("this EventBus was stopped; create a new one")
            if self._running:
                return
            self._context = context or BusContext()
            self._started_at = time.time()
            self._running = True
        for worker in self._workers.values():
            if worker.enabled:
                worker.launch(self._plugin_context(worker))

    def hold_for_late_plugins(self) -> None:
        """Keep the events published from now on (up to ``queue_size``) until :meth:`add`.

        :meth:`add` hands them to the plugins it adds first: a plugin found in the background misses
        nothing it could have queued.
        """
        with self._lock:
            self._late = collections.deque(maxlen=self._queue_size)

    def add(self, plugins: Sequence[LoadedPlugin]) -> None:
        """Add plugins (discovered later, off the GUI thread); started at once when the bus runs.

        Events kept since :meth:`hold_for_late_plugins` are queued for them first, in order.

        Raises:
            ValueError: a name is already on the bus.
        """
        with self._lock:
            taken = [p.name for p in plugins if p.name in self._workers]
            if taken:
                raise ValueError(f"plugin names must be unique; already on the bus: {', '.join(taken)}")
            added = {p.name: _Worker(self, p, self._queue_size, self._max_failures) for p in plugins}
            # Queued before the new workers are visible to publish(), so that the order holds.
            for event in self._late or ():
                for worker in added.values():
                    if worker.accepting:
                        worker.offer(event)
            self._late = None
            self._workers = {**self._workers, **added}
            running, stopped = self._running, self._stopped
        if stopped:  # found after the app stopped the bus: end their processes, nothing will run
            for worker in added.values():
                suspend = getattr(worker.plugin.plugin, "suspend", None)
                if callable(suspend):
                    suspend()
        if running:
            for worker in added.values():
                if worker.enabled:
                    worker.launch(self._plugin_context(worker))
        for worker in added.values():
            self._notify(worker)

    def publish(self, event: RecognitionEvent) -> None:
        """Queue the event for every enabled plugin; never blocks. Full queues drop it (counted)."""
        if not self._running:
            return
        workers = self._workers
        if self._late is not None:  # only while plugins are still being found
            with self._lock:
                if self._late is not None:
                    self._late.append(event)
                workers = self._workers
        for worker in workers.values():
            if worker.accepting:
                worker.offer(event)

    def publish_many(self, events: Sequence[RecognitionEvent]) -> None:
        """:meth:`publish` each event in order."""
        for event in events:
            self.publish(event)

    def status(self) -> list[PluginStatus]:
        """One status per plugin, in the order the bus was given them."""
        return [w.status() for w in self._workers.values()]

    def status_of(self, name: str) -> PluginStatus:
        """The status of one plugin.

        Raises:
            KeyError: no plugin of that name.
        """
        return self._worker(name).status()

    def plugin(self, name: str) -> LoadedPlugin:
        """The plugin as the bus was given it (its settings as they were then).

        Raises:
            KeyError: no plugin of that name.
        """
        return self._worker(name).plugin

    def current_settings(self, name: str) -> Mapping[str, Any]:
        """The plugin's settings now, after any :meth:`update_settings` (read-only).

        Raises:
            KeyError: no plugin of that name.
        """
        return MappingProxyType(dict(self._worker(name).settings))

    def add_listener(self, listener: Callable[[PluginStatus], None]) -> Callable[[], None]:
        """Call ``listener(status)`` on every state change; returns a function that removes it."""
        key = next(self._listener_ids)
        with self._lock:
            self._listeners[key] = listener

        def remove() -> None:
            with self._lock:
                self._listeners.pop(key, None)

        return remove

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Switch a plugin on or off while running; switching a disabled plugin on gives it a new start.

        Raises:
            KeyError: no plugin of that name.
        """
        worker = self._worker(name)
        restart = False
        with worker.lock:
            worker.enabled = bool(enabled)
            if enabled and worker.state in (PluginState.DISABLED, PluginState.FAILED):
                # The user asks for another try: forget the failure streak.
                restart = worker.state is PluginState.DISABLED and not worker.started
                worker.state = PluginState.OK
                worker.consecutive = 0
        if enabled and self._running:
            if worker.thread is None:
                worker.launch(self._plugin_context(worker))
            elif restart:
                worker.offer(_Restart(self._plugin_context(worker)))
        self._notify(worker)

    def update_settings(self, name: str, settings: Mapping[str, Any]) -> bool:
        """Give a plugin new settings: it is stopped and started again with them, on its own thread.

        Returns:
            False when its queue was full and the change could not be queued (try again).

        Raises:
            KeyError: no plugin of that name.
        """
        worker = self._worker(name)
        worker.settings = MappingProxyType(dict(settings))
        if worker.thread is None or not self._running:
            return True
        return worker.offer(_Restart(self._plugin_context(worker)))

    def send_test_event(self, name: str, event: RecognitionEvent | None = None) -> bool:
        """Hand one plugin a test event (default :func:`make_test_event`), even if it is switched off.

        Returns:
            False when the bus is not running or the plugin's queue is full.

        Raises:
            KeyError: no plugin of that name.
        """
        worker = self._worker(name)
        if not self._running:
            return False
        if worker.thread is None:
            worker.launch(self._plugin_context(worker))
        return worker.offer(_Test(event or make_test_event()))

    def stop(self, timeout: float | None = None, grace_s: float = 2.0) -> list[str]:
        """Deliver what is queued, call every ``on_stop`` and end the threads. Never hangs.

        Plugins get ``timeout`` seconds (default: the bus's ``drain_s``) to take their queued events.
        Events still queued then are not delivered and count as dropped; the plugin then gets
        ``on_stop`` as soon as its current call returns, within ``grace_s`` more. A plugin still busy
        after that is abandoned with a warning: its thread is left behind (delivering nothing more)
        and an isolated plugin's process is killed.

        Returns:
            The names of the abandoned plugins.
        """
        with self._lock:
            if not self._running:
                self._stopped = True
                return []
            self._running = False
            self._stopped = True
        drain = self.drain_s if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + drain
        live = [w for w in self._workers.values() if w.thread is not None]
        self._drain(live, deadline)
        late = [w for w in live if w.thread is not None and w.thread.is_alive()]
        for worker in late:
            self._cut_short(worker, drain)
        grace_end = time.monotonic() + max(0.0, grace_s)
        abandoned: list[str] = []
        for worker in late:
            assert worker.thread is not None
            worker.thread.join(max(0.0, grace_end - time.monotonic()))
            if worker.thread.is_alive():
                self._abandon(worker, drain + grace_s)
                abandoned.append(worker.name)
        return abandoned

    # -- internals
    @staticmethod
    def _drain(live: Sequence[_Worker], deadline: float) -> None:
        """Queue a stop behind each live worker's events and wait, until ``deadline``, for it to end.

        Args:
            live: the workers whose thread was started.
            deadline: ``time.monotonic()`` value after which nobody is waited for any more.
        """
        queued_stop: set[str] = set()
        # Every worker gets its stop first, so that all of them drain at once, not one after another.
        for worker in live:
            worker.stopping = True
            try:
                worker.queue.put_nowait(_STOP)
                queued_stop.add(worker.name)
            except queue.Full:
                pass  # placed after the drain, once what it could not take is discarded
        for worker in live:
            assert worker.thread is not None
            while worker.name not in queued_stop and worker.thread.is_alive():
                # A full queue: wait for room until the deadline.
                try:
                    worker.queue.put(_STOP, timeout=min(0.05, max(0.0, deadline - time.monotonic())))
                    queued_stop.add(worker.name)
                except queue.Full:
                    if time.monotonic() >= deadline:
                        break
            worker.thread.join(max(0.0, deadline - time.monotonic()))

    @staticmethod
    def _cut_short(worker: _Worker, drain: float) -> None:
        """Drop what a worker still has queued after the drain time and queue its stop right behind.

        Args:
            worker: a worker whose thread is still running after the drain.
            drain: the drain time it had, in seconds (for the warning).
        """
        undelivered = worker.discard_queued()
        if undelivered:
            log.warning(
                "plugin %r: %d events not delivered within the drain time of %g s",
                worker.name,
                undelivered,
                drain,
            )
        worker.queue.put(_STOP)  # room now: the queue was just emptied

    def _abandon(self, worker: _Worker, waited_s: float) -> None:
        """Give up on a worker that did not stop in time: mark it, end its process, tell the listeners.

        Args:
            worker: a worker whose thread is still running after the drain and the grace time.
            waited_s: how long it was given in all, in seconds.
        """
        with worker.lock:
            worker.abandoned = True
            worker.last_error = worker.last_error or f"did not stop within {waited_s:g} s; on_stop not called"
        terminate = getattr(worker.plugin.plugin, "terminate", None)
        if callable(terminate):  # its own process: end it rather than leave it running
            terminate()
        log.warning("plugin %r did not stop within %g s; abandoned", worker.name, waited_s)
        self._notify(worker)

    def _worker(self, name: str) -> _Worker:
        try:
            return self._workers[name]
        except KeyError:
            raise KeyError(f"no plugin named {name!r} on this bus") from None

    def _plugin_context(self, worker: _Worker) -> PluginContext:
        app_data = Path(self._context.data_dir) if self._context.data_dir else paths.data_dir()
        own = app_data / "plugin-data" / worker.name
        try:
            own.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the plugin finds out when it writes; the others must still start
            log.warning("cannot create %s for plugin %r: %s", own, worker.name, exc)
        return PluginContext(
            name=worker.name,
            settings=MappingProxyType(dict(worker.settings)),
            data_dir=own,
            logger=logging.getLogger(f"ghostface.plugin.{worker.name}"),
            session_started=self._started_at,
            app_data_dir=app_data,
            extras=MappingProxyType(dict(self._context.extras)),
        )

    def _notify(self, worker: _Worker) -> None:
        status = worker.status()
        with self._lock:
            listeners = list(self._listeners.values())
        for listener in listeners:
            try:
                listener(status)
            except Exception:  # a listener's bug must not take a plugin's thread down
                log.exception("plugin status listener failed")


# ------------------------------------------------------------------------------------------ assembly

SAFE_MODE_ENV = "GHOSTFACE_SAFE_MODE"


def safe_mode_requested() -> bool:
    """Whether ``GHOSTFACE_SAFE_MODE`` asks to start without folder and entry-point plugins."""
    return os.environ.get(SAFE_MODE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def create_event_bus(
    settings: Settings,
    *,
    plugins: bool = True,
    history: Any = True,
    folder: Path | None = None,
    extra_builtins: Sequence[object] = (),
    context: BusContext | None = None,
    background: bool = False,
    on_ready: Callable[[EventBus], None] | None = None,
) -> EventBus:
    """The event bus as GhostFace runs it, for the app and the command line alike; started.

    Built-ins, the user's plugins folder and the ``ghostface.plugins`` entry points are discovered
    (folder and entry-point plugins each in a process of its own when ``settings.plugins.isolate``),
    loaded with the user's settings, and joined by the history recorder, which writes every event
    into the history database.

    Args:
        settings: the whole settings (plugins, events).
        plugins: False for safe mode (``--no-plugins``, or ``GHOSTFACE_SAFE_MODE=1``): no folder or
            entry-point plugin is imported at all; the built-ins and the history still run.
        history: True for the default history file, a :class:`core.history.History`, or False for none.
        folder: the plugins folder; default :func:`core.paths.plugins_dir`.
        extra_builtins: built-ins that live outside ``core`` (the app's desktop notification).
        context: what the plugins' contexts are made from.
        background: find the folder and entry-point plugins on a thread of their own and add them when
            loaded (the app: no plugin import can delay the first frame); built-ins and history start at once.
        on_ready: called (on the discovery thread when ``background``) once every plugin is on the bus.
    """
    from core import plugins as registry

    ps = settings.plugins
    external = plugins and not safe_mode_requested()
    if not external:
        log.warning("safe mode: folder and installed plugins are not loaded")
    found = registry.discover_plugins(
        folder,
        extra_builtins=extra_builtins,
        external=external and not background,
        isolate=ps.isolate,
        timeout_s=ps.load_timeout_s,
    )
    loaded = _starting_plugins(found, settings, history, background=background)
    bus = EventBus(loaded, ps.queue_size, ps.max_failures, ps.drain_s)
    bus.discovered = tuple(found)
    if context is None:
        context = _station_context(settings)
    if background and external:
        bus.hold_for_late_plugins()
    bus.start(context)
    if background and external:
        _discover_in_background(bus, found, folder, settings, on_ready)
    elif on_ready is not None:
        on_ready(bus)
    return bus


def _starting_plugins(
    found: Sequence[DiscoveredPlugin], settings: Settings, history: Any, *, background: bool
) -> list[LoadedPlugin]:
    """The plugins the bus starts with: those found so far, loaded, and the history recorder."""
    from core import plugins as registry

    # In the background case the user's plugin names are checked once everything is found.
    loaded = registry.load_plugins(found, settings.plugins, warn_unknown=not background)
    recorder = _history_recorder(settings, history)
    if recorder is not None:
        loaded.append(recorder)
    return loaded


def _station_context(settings: Settings) -> BusContext | None:
    """The plugins' default context: None, or the station's name when the store is shared."""
    # With a shared store, plugins (the attendance log) know which station saw the event.
    if settings.store.backend != "postgresql":
        return None
    return BusContext(extras=MappingProxyType({"station": settings.store.station_name()}))


def _discover_in_background(
    bus: EventBus,
    found: Sequence[DiscoveredPlugin],
    folder: Path | None,
    settings: Settings,
    on_ready: Callable[[EventBus], None] | None,
) -> None:
    """Find the folder and entry-point plugins on a thread and add them to the bus once loaded.

    The bus keeps the events published meanwhile (up to its queue size) and hands them to these first.

    Args:
        bus: the started bus, holding events for the late plugins.
        found: what was discovered at once (the built-ins).
        folder: the plugins folder; default :func:`core.paths.plugins_dir`.
        settings: the whole settings (plugins).
        on_ready: called on the discovery thread once every plugin is on the bus, even after a failure.
    """
    from core import plugins as registry

    ps = settings.plugins

    def discover_rest() -> None:
        try:
            more = registry.discover_plugins(
                folder, builtins=False, isolate=ps.isolate, timeout_s=ps.load_timeout_s
            )
            everything = registry.remember_discovery([*found, *more])
            registry.warn_unknown_names(everything, ps)
            later = list(everything[len(found) :])
            bus.add(registry.load_plugins(later, ps, warn_unknown=False))
            bus.discovered = tuple(everything)
        except Exception:  # noqa: BLE001 - the app runs on without external plugins
            log.exception("plugins could not be discovered")
            bus.add([])  # stop holding events
        if on_ready is not None:
            on_ready(bus)

    threading.Thread(target=discover_rest, name="plugin-discovery", daemon=True).start()


def _history_recorder(settings: Settings, history: Any) -> LoadedPlugin | None:
    if history is False or history is None:
        return None
    from core.history import History

    ev = settings.events
    try:
        store = History() if history is True else history
        return store.recorder(ev.history_max_days, ev.history_max_mb)
    except Exception as exc:  # noqa: BLE001 - recognition and the plugins run without a history
        log.warning("the history cannot be recorded: %s", exc)
        return None


def plugin_report(bus: EventBus | None, discovered: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Every plugin found, with its state and last error, as JSON-ready dicts.

    For ``plugins list`` and ``--json``; secret settings are masked.

    Args:
        bus: the running (or stopped) bus, or None when only discovery ran.
        discovered: discovery results; default ``bus.discovered``.
    """
    from core.plugins import settings_schema

    found = list(discovered) or list(bus.discovered if bus is not None else ())
    on_bus = {s.name: s for s in bus.status()} if bus is not None else {}
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in found:
        status = on_bus.get(item.name) if item.ok else None
        row: dict[str, Any] = {
            "name": item.name,
            "origin": item.origin,
            "location": item.location,
            "isolated": item.isolated,
            "state": item.state,
            "enabled": False,
            "last_error": item.error or "",
            "calls": 0,
            "failures": 0,
            "dropped": 0,
            "problems": [],
            "settings": {},
        }
        if status is not None:
            seen.add(item.name)
            row.update(_status_row(status))
            schema = settings_schema(item.plugin) if item.plugin is not None else {}
            current = dict(bus.current_settings(item.name)) if bus is not None else {}
            row["settings"] = {
                k: ("***" if schema.get(k) is not None and schema[k].secret and v else v)
                for k, v in current.items()
            }
        rows.append(row)
    for name, status in on_bus.items():
        if name not in seen and not any(r["name"] == name for r in rows):
            row = {"name": name, "location": "", "settings": {}}
            row.update(_status_row(status))
            rows.append(row)
    return rows


def _status_row(status: PluginStatus) -> dict[str, Any]:
    if status.abandoned:
        state = "abandoned"
    elif status.stuck:
        state = "busy"
    elif status.state in (PluginState.DISABLED, PluginState.FAILED, PluginState.DEGRADED):
        state = str(status.state)
    else:
        state = "ok" if status.enabled else "off"
    return {
        "origin": status.origin,
        "isolated": status.isolated,
        "state": state,
        "enabled": status.enabled,
        "last_error": status.last_error,
        "calls": status.calls,
        "failures": status.failures,
        "dropped": status.dropped,
        "abandoned": status.abandoned,
        "problems": list(status.problems),
        "busy": f"{status.busy_hook} for {status.busy_s:.0f} s" if status.stuck else "",
        "problem": status.problem,
    }


def list_plugins(
    settings: Settings, *, folder: Path | None = None, plugins: bool = True
) -> list[dict[str, Any]]:
    """Every plugin found, as ``ghostface plugins list`` shows it, without starting any.

    Each is imported as the app would import it (in its own process when ``plugins.isolate``), its
    settings checked against the user's; no hook is called, so listing has no side effect.
    """
    from core import plugins as registry

    ps = settings.plugins
    found = registry.discover_plugins(
        folder,
        external=plugins and not safe_mode_requested(),
        isolate=ps.isolate,
        timeout_s=ps.load_timeout_s,
    )
    loaded = registry.load_plugins(found, ps)
    bus = EventBus(loaded, ps.queue_size, ps.max_failures, ps.drain_s)
    bus.discovered = tuple(found)
    try:
        return plugin_report(bus)
    finally:
        for item in loaded:
            suspend = getattr(item.plugin, "suspend", None)
            if callable(suspend):  # nothing runs after a listing
                suspend()


@dataclass(frozen=True, slots=True)
class PluginTestResult:
    """What ``ghostface plugins test NAME`` found out.

    Attributes:
        name: the plugin.
        ok: its ``on_start``, ``on_event`` (with a made-up ``recognized`` event) and ``on_stop`` ran
            without an error within the time limit.
        state: its state afterwards (see :func:`plugin_report`), or ``missing``.
        message: one line for the user.
        seconds: how long the test took.
        report: its row of :func:`plugin_report`.
    """

    name: str
    ok: bool
    state: str
    message: str
    seconds: float
    report: Mapping[str, Any] = field(default_factory=dict)


def test_plugin(
    settings: Settings,
    name: str,
    *,
    folder: Path | None = None,
    event: RecognitionEvent | None = None,
    timeout_s: float = 10.0,
) -> PluginTestResult:
    """Hand one plugin one test event, as the Plugins dialog's "Send test event" does, and report.

    The plugin is loaded as the app loads it (its process, its settings), started even when switched
    off, given the event and stopped; no other plugin is started and nothing is written to the history.
    """
    from core import plugins as registry

    ps = settings.plugins
    start = time.monotonic()
    found = registry.discover_plugins(folder, isolate=ps.isolate, timeout_s=ps.load_timeout_s)
    match = [d for d in found if d.name == name]
    known = ", ".join(sorted(d.name for d in found)) or "none"
    for item in found:
        suspend = getattr(item.plugin, "suspend", None)
        if callable(suspend) and item.name != name:
            suspend()
    if not match:
        return PluginTestResult(name, False, "missing", f"no plugin named {name!r} (found: {known})", 0.0)
    item = next((d for d in match if d.ok), match[0])
    if not item.ok:
        row = plugin_report(None, [item])[0]
        return PluginTestResult(name, False, item.state, f"{item.state}: {item.error}", 0.0, row)
    loaded = registry.load_plugins([item], ps, warn_unknown=False)
    bus = EventBus(loaded, ps.queue_size, ps.max_failures, min(ps.drain_s, timeout_s))
    bus.discovered = (item,)
    bus.start()
    bus.send_test_event(name, event)
    deadline = start + timeout_s
    while time.monotonic() < deadline:
        status = bus.status_of(name)
        if status.calls or status.state is PluginState.DISABLED:
            break
        time.sleep(0.01)
    bus.stop(timeout=max(0.5, deadline - time.monotonic()))
    status = bus.status_of(name)
    row = plugin_report(bus)[0]
    seconds = time.monotonic() - start
    if status.calls == 0 and status.state is not PluginState.DISABLED:
        message = f"no answer within {timeout_s:g} s"
    elif status.failures:
        message = f"failed: {status.last_error}"
    else:
        message = f"ok: on_event took the test event ({seconds:.2f} s in all)"
    return PluginTestResult(
        name, status.calls > 0 and status.failures == 0, row["state"], message, seconds, row
    )


test_plugin.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, whatever its name
