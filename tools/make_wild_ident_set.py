"""Make a small-face open-set identification set from LFW, for `ghostface eval ident` (evaluation only).

100 people with at least 4 photos: their first 2 photos, full size, are the gallery (enrolment photos are
usually good ones); up to 4 more, shrunk so the photo's long side is SIDE px (the face then spans about
0.4 x SIDE px) and re-encoded as JPEG at quality 50, are the probes: the small, compressed faces of a
live camera at a distance. 300 people with a single photo, degraded the same way, are the distractors
(non-mated probes). Deterministic: people are taken in name order.

    python tools/make_wild_ident_set.py ../shared/data/lfw /tmp/wild --side 100
    ghostface eval ident --gallery /tmp/wild/gallery --probes /tmp/wild/probes \
        --distractors /tmp/wild/distractors --embedder ghostfacenetv2 --json
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2

log = logging.getLogger("make_wild_ident_set")


def _degrade(src: Path, dst: Path, side: int) -> None:
    image = cv2.imread(str(src))
    if image is None:
        raise SystemExit(f"unreadable photo: {src}")
    scale = side / max(image.shape[:2])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    dst.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dst.with_suffix(".jpg")), small, [cv2.IMWRITE_JPEG_QUALITY, 50])


def main() -> None:
    """Write the gallery, probes and distractors from the LFW folder given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lfw", type=Path, help="the LFW folder (<name>/<name>_NNNN.jpg)")
    parser.add_argument("out", type=Path, help="where gallery/, probes/ and distractors/ are written")
    parser.add_argument("--side", type=int, default=100, help="long side of probe photos, px (default 100)")
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--distractors", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folders = sorted(p for p in args.lfw.iterdir() if p.is_dir())
    photos = {p.name: sorted(p.glob("*.jpg")) for p in folders}
    mated = [n for n in photos if len(photos[n]) >= 4][: args.people]
    single = [n for n in photos if len(photos[n]) == 1][: args.distractors]
    for name in mated:
        for photo in photos[name][:2]:
            target = args.out / "gallery" / name / photo.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(photo.read_bytes())
        for photo in photos[name][2:6]:
            _degrade(photo, args.out / "probes" / name / photo.name, args.side)
    for name in single:
        _degrade(photos[name][0], args.out / "distractors" / photos[name][0].name, args.side)
    log.info("%d gallery people, probes at %d px, %d distractors in %s", len(mated), args.side, len(single), args.out)


if __name__ == "__main__":
    main()
