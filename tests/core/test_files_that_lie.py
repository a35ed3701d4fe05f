"""Issue 12, point 9 (and the naming and copy items of point 10): files that are not what they say.

Real files: a named pipe called ``x.jpg``, a link to ``/dev/zero``, a real 20000x20000 PNG (1 bit per
pixel, about 50 KB on disk, 400 Mpx once decoded), and a real full disk (a small tmpfs) for a copy.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest

from core._image import decode_image, read_bytes
from core.capture import open_source
from core.errors import ImageRefusedError, InvalidPersonName, SourceError
from core.gallery import Gallery, PhotoStatus, validate_person_name
from tests._disks import tiny_disk

posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes and /dev/zero are POSIX")


def _huge_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid PNG of ``width`` x ``height`` 1-bit grey pixels; tiny on disk, huge once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" + b"\0" * ((width + 7) // 8)  # filter byte + packed pixels
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture(scope="module")
def models() -> tuple:
    from core.detection import create_detector
    from core.embedding import create_embedder

    return create_detector("yunet", max_side=640), create_embedder("sface")


def _in_thread(fn, timeout_s: float = 60.0):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) when it does not return in time."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"still running after {timeout_s} s: it hangs"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


@posix_only
def test_a_named_pipe_a_device_and_a_bomb_in_the_gallery_are_reported_not_used(
    tmp_path: Path, demo_dir: Path, models: tuple
) -> None:
    detector, embedder = models
    person = tmp_path / "gallery" / "Barack Obama"
    person.mkdir(parents=True)
    shutil.copy(demo_dir / "obama.jpg", person / "obama.jpg")
    os.mkfifo(person / "x.jpg")
    (person / "zero.jpg").symlink_to("/dev/zero")
    _huge_png(person / "huge.png")
    assert (person / "huge.png").stat().st_size < 400_000

    gallery = Gallery(tmp_path / "gallery", embedder, detector, cache_path=tmp_path / "cache.sqlite3")
    start = time.monotonic()
    report = _in_thread(gallery.sync)
    assert time.monotonic() - start < 30
    assert report.usable == 1
    reasons = {p.path.name: (p.status, p.message) for p in report.problems}
    assert reasons["x.jpg"][0] is PhotoStatus.REFUSED and "named pipe" in reasons["x.jpg"][1]
    assert reasons["zero.jpg"][0] is PhotoStatus.REFUSED and "device" in reasons["zero.jpg"][1]
    assert reasons["huge.png"][0] is PhotoStatus.REFUSED and "20000x20000" in reasons["huge.png"][1]
    assert all("not used" in message for _, message in reasons.values())

    # Enrolling the same files from elsewhere says the same, and copies none of them.
    enrol = _in_thread(
        lambda: gallery.add_photos("Someone", [person / "x.jpg", person / "zero.jpg", person / "huge.png"])
    )
    assert [r.status for r in enrol.results] == [PhotoStatus.REFUSED] * 3
    gallery.close()


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    data = _huge_png(tmp_path / "huge.png").read_bytes()
    start = time.perf_counter()
    with pytest.raises(ImageRefusedError, match="20000x20000"):
        decode_image(data, "huge.png")
    assert time.perf_counter() - start < 0.5  # nothing was decoded


@posix_only
def test_read_bytes_refuses_pipes_devices_and_oversized_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(ImageRefusedError, match="named pipe"):
        _in_thread(lambda: read_bytes(tmp_path / "pipe.jpg"), 10)
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    with pytest.raises(ImageRefusedError, match="device"):
        read_bytes(tmp_path / "zero.jpg")
    (tmp_path / "big.jpg").write_bytes(b"\xff\xd8" + b"\0" * 2000)
    with pytest.raises(ImageRefusedError, match="larger than"):
        read_bytes(tmp_path / "big.jpg", max_bytes=1000)


@posix_only
def test_an_image_source_that_is_a_named_pipe_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.jpg")
    with pytest.raises(SourceError):
        _in_thread(lambda: open_source(str(tmp_path / "x.jpg")), 20)


# ----------------------------------------------------------------------------- point 10: names, copies


def test_person_names_are_limited_in_bytes_and_refuse_invisible_characters() -> None:
    assert validate_person_name("李" * 66) == "李" * 66  # 198 bytes
    with pytest.raises(InvalidPersonName, match="bytes"):
        validate_person_name("李" * 80)  # 80 characters, 240 bytes
    for hidden in ("\u202eevil", "Bar\u200back", "Ann\u2066a", "\ufeffBob", "Jo\u200dhn"):
        with pytest.raises(InvalidPersonName, match="invisible"):
            validate_person_name(hidden)
    assert validate_person_name("Zoë Saldaña") == "Zoë Saldaña"


ZWNJ, ZWJ = "\u200c", "\u200d"


@pytest.mark.parametrize(
    "name",
    [
        f"فاطمه{ZWNJ}زهرا",  # Persian: Fatemeh-Zahra, the non-joiner keeps the two names apart
        f"محمد{ZWNJ}مهدی رضایی",
        f"شمس{ZWNJ}الدین محمدی",
        f"میر{ZWNJ}حسین موسوی",
        f"ज्{ZWNJ}ञानेश्वर",  # Marathi/Devanagari: a visible virama instead of a conjunct
        f"क्{ZWJ}षितिज",  # Devanagari: the half form of KA
        f"സ്വാമിനാഥന്{ZWJ}പിള്ള",  # Malayalam: a chillu inside the name
    ],
)
def test_persian_and_indic_names_keep_their_joiners(name: str) -> None:
    assert validate_person_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        f"{ZWNJ}فاطمه",  # at the start
        f"فاطمه{ZWNJ}",  # at the end
        f"فاطمه{ZWNJ}{ZWNJ}زهرا",  # doubled
        f"فاطمه{ZWNJ}{ZWJ}زهرا",
        f"فاطمه {ZWNJ}زهرا",  # next to a space
        f"فاطمه{ZWNJ} زهرا",
        f"Fat{ZWNJ}emeh",  # in a script that does not use it
        f"Jo{ZWJ}hn",
        f"Ali{ZWNJ}رضا",  # next to ASCII
        f"👨{ZWJ}👩",  # an emoji sequence is not a letter
        "فاطمه\u200bزهرا",  # other zero-width characters stay refused
        "فاطمه\u2060زهرا",
        "فاطمه\ufeffزهرا",
        "فاطمه\u200fزهرا",  # and the bidi marks and controls
        "فاطمه\u202bزهرا",
        "فاطمه\u2067زهرا",
    ],
)
def test_joiners_anywhere_else_and_other_invisible_characters_are_refused(name: str) -> None:
    with pytest.raises(InvalidPersonName, match="invisible"):
        validate_person_name(name)


def test_a_copy_that_fails_on_a_full_disk_is_not_called_unreadable(
    tmp_path: Path, demo_dir: Path, models: tuple
) -> None:
    detector, embedder = models
    with tiny_disk(tmp_path / "disk", "1m") as disk:
        gallery = Gallery(disk.root / "gallery", embedder, detector, cache_path=tmp_path / "cache.sqlite3")
        gallery.add_person("Barack Obama")
        disk.fill()
        report = gallery.add_photos("Barack Obama", [demo_dir / "obama.jpg"])
        (result,) = report.results
        assert result.status is PhotoStatus.NOT_SAVED
        assert "unreadable" not in result.message and "cannot be read" not in result.message
        assert "No space left" in result.message and "free some space" in result.message
        gallery.close()
