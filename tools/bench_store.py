"""Benchmarks of the shared PostgreSQL store (BENCHMARKS.md, "Shared store").

Starts a durable PostgreSQL (fsync on, as a real server) in a temporary folder with the test suite's
helper, then measures:

1. start-up of a station with a 10,000-photo gallery: on the server vs the same gallery embedded
   (folder + SQLite cache), both with every embedding already computed;
2. events per second written by four stations (four processes) at once, and the server's commit
   latency meanwhile;
3. time from an enrolment on one station to the gallery change on another (LISTEN/NOTIFY + reload).

Usage: ``python tools/bench_store.py [--photos 10000] [--events 2000]`` (prints JSON).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GHOSTFACE_MODEL_PATH", str(REPO.parent / "shared" / "models"))

from core.detection import create_detector  # noqa: E402
from core.embedding import create_embedder  # noqa: E402
from core.gallery import Gallery, _sha256, embed_largest_face  # noqa: E402
from tests import _postgres as tpg  # noqa: E402

DEMO = REPO.parent / "shared" / "data" / "demo"


def face_crops(detector, embedder) -> list[tuple[bytes, np.ndarray]]:
    """Every demo face as a JPEG crop with its embedding (the crop is embedded as a photo would be)."""
    out = []
    for path in sorted(DEMO.rglob("*.jpg")) + sorted(DEMO.rglob("*.png")):
        image = cv2.imread(str(path))
        if image is None:
            continue
        for det in detector.detect(image):
            x1, y1, x2, y2 = (int(v) for v in det.box)
            pad = (x2 - x1) // 2
            crop = image[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
            crop = cv2.resize(crop, (160, int(160 * crop.shape[0] / max(1, crop.shape[1]))))
            ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
            vector, dets = embed_largest_face(crop, detector, embedder)
            if ok and vector is not None and len(dets) == 1:
                out.append((data.tobytes(), vector))
    return out


def synthesize(crops, n: int) -> list[tuple[str, str, bytes, np.ndarray]]:
    """``n`` photos (person, file name, distinct bytes, embedding): 20 per person."""
    photos = []
    for i in range(n):
        data, vector = crops[i % len(crops)]
        # Bytes after the JPEG's end are ignored by decoders: each photo is distinct, same face.
        photos.append(
            (f"Person {i // 20:04d}", f"photo-{i:05d}.jpg", data + b"GF" + i.to_bytes(4, "big"), vector)
        )
    return photos


def timed(fn, repeat: int = 3) -> float:
    """Median seconds of ``repeat`` calls."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def bench_startup(server, db, photos, detector, embedder, work: Path) -> dict:
    """Open and sync the same gallery on the server and as a folder, every embedding already stored."""
    import psycopg

    from core.store.shared_gallery import SharedGallery

    prep = f"p{embedder.preprocessing_version}/{detector.model_id}/flip"
    url = server.url(tpg.ADMIN_USER, tpg.ADMIN_PASSWORD, db)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        people = sorted({p[0] for p in photos})
        ids = {}
        for name in people:
            ids[name] = cur.execute(
                "INSERT INTO people(name, name_key) VALUES (%s, %s) RETURNING id", (name, name.casefold())
            ).fetchone()[0]
        with cur.copy("COPY photos (person_id, file_name, sha256, data) FROM STDIN") as copy:
            for name, file_name, data, _ in photos:
                copy.write_row((ids[name], file_name, _sha256(data), data))
        with cur.copy("COPY embeddings (sha256, model_id, prep, faces, vector) FROM STDIN") as copy:
            for _, _, data, vector in photos:
                copy.write_row(
                    (_sha256(data), embedder.model_id, prep, 1, vector.astype(np.float32).tobytes())
                )
        conn.commit()

    def server_start() -> None:
        with SharedGallery(url, embedder, detector, station="bench") as g:
            assert g.sync().usable == len(photos)

    root, cache = work / "gallery", work / "cache.sqlite3"
    for name, file_name, data, _ in photos:
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / file_name).write_bytes(data)
    with Gallery(root, embedder, detector, cache_path=cache) as g:
        g._begin()
        for _, _, data, vector in photos:
            g._store(_sha256(data), 1, vector)
        g._commit()

    def embedded_start() -> None:
        with Gallery(root, embedder, detector, cache_path=cache) as g:
            assert g.sync().usable == len(photos)

    first = timed(embedded_start, repeat=1)  # hashes every file once, as after an upgrade
    return {
        "photos": len(photos),
        "server_start_s": round(timed(server_start), 2),
        "embedded_first_start_s": round(first, 2),
        "embedded_start_s": round(timed(embedded_start), 2),
    }


def _station(url: str, name: str, n: int, outbox: str, queue) -> None:
    from core.store.shared_history import SharedHistory
    from core.types import EventKind, RecognitionEvent

    thumb = cv2.imencode(".jpg", np.full((96, 96, 3), 128, np.uint8))[1].tobytes()
    history = SharedHistory(url, station=name, outbox_path=Path(outbox), retry_s=0.05)
    start = time.perf_counter()
    for i in range(n):
        history.record(
            [
                RecognitionEvent(
                    EventKind.RECOGNIZED, time.time(), "cam", i, "Ada", 0.6, (1, 2, 3, 4), thumb, i, i / 30
                )
            ]
        )
    while history.pending:
        time.sleep(0.01)
    queue.put((name, time.perf_counter() - start))
    history.close()


def bench_events(server, db, n: int, work: Path) -> dict:
    """Four station processes record ``n`` events each; a probe measures the commit latency meanwhile."""
    import psycopg

    url = server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db)
    queue = mp.get_context("spawn").Queue()
    procs = [
        mp.get_context("spawn").Process(
            target=_station, args=(url, f"S{i}", n, str(work / f"o{i}.sqlite3"), queue)
        )
        for i in range(4)
    ]
    latencies = []
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    with psycopg.connect(url) as conn:
        # The server's commit latency while the four stations write: one small event per transaction.
        while any(p.is_alive() for p in procs) and len(latencies) < 2000:
            t = time.perf_counter()
            conn.execute(
                "INSERT INTO events (event_id, station, time, kind, similarity, source, track_id, frame_index,"
                " stream_time, box, api_version) VALUES (gen_random_uuid(), 'probe', 0, 'unknown', 0, '', 0, 0,"
                " 0, '[]', 1)"
            )
            conn.commit()
            latencies.append((time.perf_counter() - t) * 1000)
            time.sleep(0.01)
    done = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - t0
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT COUNT(*) FROM events WHERE station <> 'probe'").fetchone()[0]
    latencies.sort()
    return {
        "stations": 4,
        "events_per_station": n,
        "stored": stored,
        "wall_s_incl_start": round(wall, 2),
        "events_per_s": round(4 * n / max(s for _, s in done), 1),
        "commit_ms_p50": round(latencies[len(latencies) // 2], 2),
        "commit_ms_p95": round(latencies[int(len(latencies) * 0.95)], 2),
    }


def bench_propagation(server, db, detector, embedder, rounds: int = 10) -> dict:
    """Time from a change committed by station A to station B's matrix holding it."""
    from core.store.shared_gallery import SharedGallery

    admin = server.url(tpg.ADMIN_USER, tpg.ADMIN_PASSWORD, db)
    station = server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db)
    delays = []
    with (
        SharedGallery(admin, embedder, detector, station="A", listen=False) as a,
        SharedGallery(station, embedder, detector, station="B") as b,
    ):
        b.sync()
        a.add_photos("Lin-Manuel Miranda", [DEMO / "lin-manuel-miranda.png"])
        for i in range(rounds):
            name = f"Lin {i}"
            old = a.people()[0].name
            t = time.time()
            a.rename_person(old, name)
            while name not in b.snapshot().labels:
                time.sleep(0.002)
            delays.append((time.time() - t) * 1000)
    delays.sort()
    return {
        "rounds": rounds,
        "change_to_station_ms_median": round(statistics.median(delays), 1),
        "max_ms": round(delays[-1], 1),
    }


def main() -> None:
    """Run every benchmark against a temporary durable server; print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10000)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ghostface-bench-pg-"))
    work = Path(tempfile.mkdtemp(prefix="ghostface-bench-"))
    server = tpg.start_server(base, durable=True)
    try:
        detector, embedder = create_detector("yunet"), create_embedder("sface")
        crops = face_crops(detector, embedder)
        result = {
            "distinct_faces": len(crops),
            "startup": bench_startup(
                server, tpg.fresh_database(server), synthesize(crops, args.photos), detector, embedder, work
            ),
            "events": bench_events(server, tpg.fresh_database(server), args.events, work),
            "propagation": bench_propagation(server, tpg.fresh_database(server), detector, embedder),
        }
        print(json.dumps(result, indent=2))  # noqa: T201 - the script's output
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
