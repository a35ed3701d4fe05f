"""Numbers for the unknown people of a run: an unknown face that comes back is the same "Unknown #12".

Without this every new track of a stranger would be a new unknown (a face that turns away for a moment,
a shot change, the next loop of a video), and a long run would count hundreds of them. Each unknown
person is kept as a running mean of their embeddings; a new unknown track whose embedding is close enough
to one of them takes that number.

Lifetime: the list lives as long as the pipeline's source. It survives a new stream of the same source
(a looping video's next pass shows the same people, who keep their numbers) and shot changes, and is
cleared for a new source or a new embedder (whose embeddings cannot be compared with the old ones).
Its size is bounded: the least recently seen unknown is forgotten first.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_CAPACITY", "UnknownPeople"]

log = logging.getLogger(__name__)

# Unknown people remembered at most; far more than fit in one view, and a fixed cost to compare with.
DEFAULT_CAPACITY = 200
# A person's mean is averaged over at most this many embeddings, so that it follows slow changes (light,
# pose) instead of freezing on the first sightings.
_MEAN_WINDOW = 50


@dataclass(slots=True)
class _Unknown:
    mean: np.ndarray  # (d,) float32, L2-normalised running mean
    count: int


class UnknownPeople:
    """A bounded, least-recently-seen-first list of unknown people, each a running mean embedding.

    Not thread-safe: it belongs to one pipeline.

    Args:
        threshold: cosine similarity at or above which an embedding is taken to be a known unknown
            (the pipeline uses its matcher's threshold: the same "same person" line as for the gallery).
        capacity: how many unknown people are remembered.
    """

    def __init__(self, threshold: float, capacity: int = DEFAULT_CAPACITY) -> None:
        self.threshold = float(threshold)
        self.capacity = max(1, int(capacity))
        self._people: OrderedDict[int, _Unknown] = OrderedDict()
        self._next = 1

    def __len__(self) -> int:
        return len(self._people)

    @property
    def numbers(self) -> tuple[int, ...]:
        """The numbers remembered, least recently seen first."""
        return tuple(self._people)

    def clear(self) -> None:
        """Forget everyone (a new source or embedder); numbers go on increasing, never reused."""
        self._people.clear()

    def identify(self, embedding: np.ndarray, exclude: Collection[int] = ()) -> int:
        """The number of the unknown person ``embedding`` shows: an old one if close enough, else a new one.

        Args:
            embedding: ``(d,)`` face embedding (any scale).
            exclude: numbers that cannot be this face (held by other faces in view at the same time).

        Returns:
            the person's number (1, 2, ...); the embedding is added to their mean.
        """
        query = _unit(embedding)
        best, best_sim = 0, -2.0
        for number, person in self._people.items():
            if number in exclude or person.mean.shape != query.shape:
                continue
            sim = float(person.mean @ query)
            if sim > best_sim:
                best, best_sim = number, sim
        if best and best_sim >= self.threshold:
            self.add(best, query)
            return best
        number = self._next
        self._next += 1
        self._people[number] = _Unknown(query, 1)
        if len(self._people) > self.capacity:
            forgotten, _ = self._people.popitem(last=False)
            log.debug("unknown #%d forgotten: more than %d unknown people", forgotten, self.capacity)
        return number

    def add(self, number: int, embedding: np.ndarray) -> None:
        """Another sighting of unknown ``number``: its mean moves towards ``embedding``."""
        person = self._people.get(number)
        query = _unit(embedding)
        if person is None or person.mean.shape != query.shape:
            return
        person.count = min(person.count + 1, _MEAN_WINDOW)
        person.mean = _unit(person.mean + (query - person.mean) / person.count)
        self._people.move_to_end(number)


def _unit(x: np.ndarray) -> np.ndarray:
    v = np.asarray(x, dtype=np.float32).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)
