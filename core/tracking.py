"""Face tracks across frames: IoU association, an identity vote with hysteresis, and a re-embed policy.

Tracking is what makes the live view both stable and cheap. The name shown on a face is a vote over the
last few fresh decisions of its track, and it changes only when another name clearly wins; a track
whose identity is settled is embedded again only every few frames, or when its face gets clearly
better (bigger or sharper), instead of on every frame.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.settings import TrackingSettings
from core.types import Detection, Face, HeldBack, Match, UnknownReason
from core.unknowns import UnknownPeople

__all__ = ["Assignment", "Tracker", "iou_matrix"]

# A settled track's face counts as "clearly better" (worth a fresh embedding before its interval is
# up) when its shorter box side grew by this factor, or its sharpness by this one, since the last embedding.
_BIGGER = 1.3
_SHARPER = 1.5
# A track settled as Unknown is re-embedded this many times less often than a named one.
_UNKNOWN_INTERVAL_FACTOR = 2


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` with every box in ``b``.

    Args:
        a: ``(N, 4)`` boxes ``x1, y1, x2, y2``.
        b: ``(M, 4)`` boxes.

    Returns:
        ``(N, M) float32``.
    """
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Assignment:
    """The tracker's plan for one frame, one entry per detection (same order).

    Attributes:
        track_ids: the track each detection belongs to (new tracks get new ids).
        needs_embedding: whether the pipeline must embed the detection this frame.
        frame_index: the frame the plan is for.
    """

    track_ids: tuple[int, ...]
    needs_embedding: tuple[bool, ...]
    frame_index: int

    @property
    def to_embed(self) -> list[int]:
        """Indices of the detections to embed."""
        return [i for i, need in enumerate(self.needs_embedding) if need]


@dataclass(slots=True)
class _Track:
    track_id: int
    box: np.ndarray
    first_frame: int
    last_seen: int
    missed: int = 0
    votes: deque[str | None] = field(default_factory=deque)
    shown: str | None = None
    # The latest fresh match that agreed with the shown name (what the overlay prints), and the latest
    # fresh match of any kind.
    shown_match: Match = field(default_factory=lambda: Match(None, -1.0))
    last_match: Match | None = None
    last_embed_frame: int = -(10**9)
    embed_size: float = 0.0
    embed_sharpness: float = 0.0
    size: float = 0.0
    sharpness: float = 0.0
    # The face's latest embedding: kept so that a new threshold or gallery can decide the track again
    # at once, without waiting for (or paying) its next embedding.
    embedding: np.ndarray | None = None
    # The unknown person this track was re-identified as (0: none yet).
    unknown_id: int = 0

    @property
    def settled(self) -> bool:
        return self.last_match is not None and self.last_match.person == self.shown

    def agreeing(self) -> int:
        return sum(1 for v in self.votes if v == self.shown)


class Tracker:
    """Keeps face tracks and their identities.

    Use it in two steps per frame, from one thread: :meth:`assign` associates the frame's detections
    with tracks and says which of them to embed; after embedding and matching those, :meth:`update`
    records the fresh decisions and returns the faces with their voted identities.

    Identity rule: each fresh decision (a name or Unknown) is a vote; the last ``vote_window`` votes
    count. An Unknown track shows a name once ``confirm_votes`` votes agree on it and no other label
    has as many. A shown name changes (to another name or back to Unknown) only when the challenger
    has at least ``confirm_votes`` votes and strictly more than the shown name: this hysteresis keeps
    one odd frame from flipping a label.

    Re-embed rule: a track is embedded on every frame until its shown label is backed by its latest
    decision and by ``confirm_votes`` votes; after that only every ``reembed_interval`` frames (twice
    that for a track settled as Unknown), or sooner when its face gets clearly bigger or sharper than
    at its last embedding.

    Live changes: each track keeps its latest embedding, so that when the matcher's threshold, margin
    or gallery changes, :meth:`redecide` gives every track the new matcher's answer at once.

    Unknown people: a track settled as Unknown (``confirm_votes`` agreeing Unknown decisions) is given
    the number of an unknown person from ``unknowns`` by its embedding (a known one when it is close
    enough, else a new one), and each later embedding of the track refines that person.

    Args:
        settings: tracking settings; may be replaced later through :attr:`settings`.
        unknowns: the unknown people to number unknown tracks with; None: unknown faces are not numbered.
    """

    def __init__(
        self, settings: TrackingSettings | None = None, unknowns: UnknownPeople | None = None
    ) -> None:
        self.settings = settings or TrackingSettings()
        self.unknowns = unknowns
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1

    @property
    def track_count(self) -> int:
        """Live tracks (seen recently enough to be kept)."""
        return len(self._tracks)

    def reset(self) -> None:
        """Forget every track (a new source starts). Track ids keep increasing: an id is never reused."""
        self._tracks.clear()

    def assign(
        self,
        detections: Sequence[Detection],
        frame_index: int,
        sharpness: Sequence[float] | None = None,
        *,
        embed_all: bool = False,
    ) -> Assignment:
        """Associate detections with tracks and plan which ones to embed.

        Greedy association on IoU (highest overlap first, at least ``iou_threshold``); a detection
        left over starts a new track; a track missed more than ``max_missed_frames`` frames in a row
        is dropped.

        Args:
            detections: this frame's faces.
            frame_index: the frame's index in its source (increasing).
            sharpness: optional per-detection sharpness (any increasing measure, e.g. Laplacian
                variance), used to re-embed a track whose face became clearly sharper.
            embed_all: plan an embedding for every detection (the every-frame baseline).

        Returns:
            the plan for this frame.
        """
        n = len(detections)
        boxes = np.array([d.box for d in detections], dtype=np.float32).reshape(n, 4)
        assigned = self._associate(boxes)
        seen: set[int] = set()
        track_ids: list[int] = []
        needs: list[bool] = []
        for di, det in enumerate(detections):
            tid = assigned[di]
            if tid is None:
                tid = self._next_id
                self._next_id += 1
                self._tracks[tid] = _Track(
                    track_id=tid, box=boxes[di], first_frame=frame_index, last_seen=frame_index
                )
            track = self._tracks[tid]
            track.box = boxes[di]
            track.last_seen = frame_index
            track.missed = 0
            track.size = float(min(det.width, det.height))
            track.sharpness = float(sharpness[di]) if sharpness is not None else 0.0
            seen.add(tid)
            track_ids.append(tid)
            needs.append(embed_all or self._needs_embedding(track, frame_index))
        self._age_unseen(seen)
        return Assignment(tuple(track_ids), tuple(needs), frame_index)

    def _associate(self, boxes: np.ndarray) -> list[int | None]:
        """Greedy IoU association, highest overlap first: the track id of each box, or None (new face)."""
        n = len(boxes)
        track_list = list(self._tracks.values())
        assigned: list[int | None] = [None] * n
        if not n or not track_list:
            return assigned
        ious = iou_matrix(np.stack([t.box for t in track_list]), boxes)
        order = np.argsort(-ious, axis=None, kind="stable")
        used_tracks: set[int] = set()
        for flat in order.tolist():
            ti, di = divmod(flat, n)
            if ious[ti, di] < self.settings.iou_threshold:
                break
            if ti in used_tracks or assigned[di] is not None:
                continue
            used_tracks.add(ti)
            assigned[di] = track_list[ti].track_id
        return assigned

    def _age_unseen(self, seen: set[int]) -> None:
        """Count a miss for every track not seen this frame; drop those missed too long."""
        for tid in [tid for tid in self._tracks if tid not in seen]:
            track = self._tracks[tid]
            track.missed += 1
            if track.missed > self.settings.max_missed_frames:
                del self._tracks[tid]

    def _needs_embedding(self, track: _Track, frame_index: int) -> bool:
        # Unsettled: no decision yet, the latest decision disagrees with the label shown, or the label
        # is not yet backed by enough votes. Embedding every frame then makes a wrong label short-lived.
        if not track.settled or track.agreeing() < self.settings.confirm_votes:
            return True
        interval = self.settings.reembed_interval
        if track.shown is None:
            # A settled stranger is looked at half as often: crowds of unknown faces would otherwise
            # dominate the embedding cost, and a face that gets bigger or sharper is re-checked anyway.
            interval *= _UNKNOWN_INTERVAL_FACTOR
        if frame_index - track.last_embed_frame >= interval:
            return True
        if track.embed_size > 0 and track.size >= _BIGGER * track.embed_size:
            return True
        return track.embed_sharpness > 0 and track.sharpness >= _SHARPER * track.embed_sharpness

    def redecide(self, decide: Callable[[np.ndarray], list[Match]]) -> int:
        """Decide every live track again from its latest embedding (the matcher or gallery changed).

        The new decision replaces the track's votes outright: hysteresis is there against one odd
        frame, and must not keep a name that the user's new threshold (or a gallery without that
        person) now rejects, nor hold back one it now accepts. The votes are refilled with
        ``confirm_votes`` copies of the decision so the track stays settled and is not embedded on
        every frame just because its settings changed. Tracks never embedded are left alone.

        Args:
            decide: maps ``(N, d)`` embeddings to one match each (``Matcher.match``).

        Returns:
            how many tracks were decided again.
        """
        stored = [(t, t.embedding) for t in self._tracks.values() if t.embedding is not None]
        if not stored:
            return 0
        tracks = [track for track, _ in stored]
        decisions = decide(np.stack([embedding for _, embedding in stored]))
        cfg = self.settings
        for track, match in zip(tracks, decisions, strict=True):
            track.last_match = match
            track.votes = deque([match.person] * cfg.confirm_votes, maxlen=cfg.vote_window)
            track.shown = match.person
            track.shown_match = match if match.person is not None else Match(None, -1.0)
        return len(tracks)

    def forget_embeddings(self) -> None:
        """Drop every stored embedding (they came from a model that is no longer used)."""
        for track in self._tracks.values():
            track.embedding = None

    def update(
        self,
        assignment: Assignment,
        detections: Sequence[Detection],
        matches: Mapping[int, Match],
        embeddings: Mapping[int, np.ndarray] | None = None,
    ) -> list[Face]:
        """Record fresh decisions and return the frame's faces with their voted identities.

        Args:
            assignment: what :meth:`assign` returned for this frame.
            detections: the same detections, in the same order.
            matches: detection index -> fresh match, for the detections that were embedded.
            embeddings: detection index -> the embedding behind that match, kept for :meth:`redecide`.

        Returns:
            one :class:`~core.types.Face` per detection, in order.
        """
        cfg = self.settings
        faces: list[Face] = []
        for di, (tid, det) in enumerate(zip(assignment.track_ids, detections, strict=True)):
            track = self._tracks.get(tid)
            fresh = matches.get(di)
            if track is None:
                # The track was dropped between assign and update (settings changed): show the raw decision.
                faces.append(Face(det, tid, fresh or Match(None, -1.0), embedded=fresh is not None))
                continue
            if fresh is not None:
                track.last_match = fresh
                if embeddings is not None and di in embeddings:
                    track.embedding = embeddings[di]
                track.last_embed_frame = assignment.frame_index
                track.embed_size = track.size
                track.embed_sharpness = track.sharpness
                if track.votes.maxlen != cfg.vote_window:
                    track.votes = deque(track.votes, maxlen=cfg.vote_window)
                track.votes.append(fresh.person)
                self._vote(track)
                if fresh.person == track.shown:
                    track.shown_match = fresh
                self._number_unknown(track)
            faces.append(
                Face(
                    detection=det,
                    track_id=tid,
                    match=self._display_match(track, cfg.confirm_votes),
                    embedded=fresh is not None,
                    track_age=assignment.frame_index - track.first_frame + 1,
                    unknown_id=track.unknown_id if track.shown is None else 0,
                )
            )
        return faces

    def _number_unknown(self, track: _Track) -> None:
        """After a fresh embedding: number a track settled as Unknown, or refine its unknown person."""
        if self.unknowns is None or track.shown is not None or track.embedding is None:
            return
        if track.unknown_id:
            self.unknowns.add(track.unknown_id, track.embedding)
        elif track.agreeing() >= self.settings.confirm_votes:
            # Not the number of another face in view: two strangers side by side are two people.
            taken = {t.unknown_id for t in self._tracks.values() if t.unknown_id and t is not track}
            track.unknown_id = self.unknowns.identify(track.embedding, exclude=taken)

    def _vote(self, track: _Track) -> None:
        counts = Counter(track.votes)
        need = self.settings.confirm_votes
        current = counts.get(track.shown, 0)
        best_label, best_count = None, 0
        for label, count in counts.items():
            if label == track.shown:
                continue
            # A tie between challengers goes to a name rather than to Unknown.
            if count > best_count or (count == best_count and best_label is None and label is not None):
                best_label, best_count = label, count
        if best_count < need:
            return
        if track.shown is None:
            # Leaving Unknown: the name needs its confirm votes and must not tie with any other label.
            rivals = [c for lbl, c in counts.items() if lbl != best_label]
            if best_label is not None and all(best_count > c for c in rivals):
                track.shown = best_label
                track.shown_match = self._latest_for(track, best_label)
        elif best_count > current:
            track.shown = best_label
            track.shown_match = self._latest_for(track, best_label)

    @staticmethod
    def _latest_for(track: _Track, label: str | None) -> Match:
        last = track.last_match
        if last is not None and last.person == label:
            return last
        return Match(label, last.similarity if last is not None else -1.0)

    @staticmethod
    def _display_match(track: _Track, votes_needed: int) -> Match:
        if track.shown is not None:
            return track.shown_match
        # Unknown: show the latest decision's similarity (how close the best candidate came), and why
        # it is not a name: the matcher's rule, or a name the votes have not confirmed yet.
        last = track.last_match
        if last is None:
            return Match(None, -1.0)
        reason = last.reason
        if last.person is not None:
            reason = UnknownReason(
                HeldBack.VOTES,
                last.person,
                last.similarity,
                second_person=last.second_person,
                second_similarity=last.second_similarity,
                votes=sum(1 for v in track.votes if v == last.person),
                votes_needed=votes_needed,
            )
        return Match(None, last.similarity, last.second_person, last.second_similarity, reason)
