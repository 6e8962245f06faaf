"""Camera facts from an MP4 / QuickTime container's metadata items (``meta`` → ``keys`` + ``ilst``).

Phones write the camera's field of view into the movie: an iPhone stores the video track's lens as
the QuickTime metadata key ``com.apple.quicktime.camera.focal_length.35mm_equivalent`` (Apple's
AVFoundation key ``quickTimeMetadataKeyCameraFocalLength35mmEquivalent``: a UTF-8 value such as
``"50.00mm"``, track-level metadata of the video track; some writers store an integer). OpenCV does
not expose these items, so this module walks the boxes itself (ISO/IEC 14496-12 box headers; the
QuickTime ``keys``/``ilst`` layout): only the ``moov`` box is read, never the media data.

``read_camera_metadata(path) -> dict`` never raises for a damaged or unusual file: what cannot be
read is simply absent (the capture then estimates the focal length another way).
"""
from __future__ import annotations

import math
import re
import struct
from pathlib import Path

#: The QuickTime metadata key of the 35 mm-equivalent focal length (mm) and of the lens description.
KEY_FOCAL_35MM = "com.apple.quicktime.camera.focal_length.35mm_equivalent"
KEY_LENS_MODEL = "com.apple.quicktime.camera.lens_model"
#: Boxes whose payload is a list of boxes (walked to find ``meta``).
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"udta"}
#: Largest ``moov`` box read into memory, bytes (a movie's index; far below this in practice).
MAX_MOOV_BYTES = 64 << 20
#: Deepest box nesting followed.
_MAX_DEPTH = 8
#: QuickTime well-known data types of a ``data`` box: UTF-8, signed / unsigned big-endian
#: integers, big-endian float32 / float64.
_UTF8, _INT, _UINT, _F32, _F64 = 1, 21, 22, 23, 24


def _boxes(buf: bytes, start: int, end: int):
    """(type, payload start, payload end) of the boxes in ``buf[start:end]``; stops at a bad header."""
    off = start
    while off + 8 <= end:
        size, typ = struct.unpack(">I4s", buf[off:off + 8])
        head = 8
        if size == 1:
            if off + 16 > end:
                return
            size = struct.unpack(">Q", buf[off + 8:off + 16])[0]
            head = 16
        elif size == 0:
            size = end - off
        if size < head or off + size > end:
            return
        yield typ, off + head, off + size
        off += size


def _top_level_moov(f, file_size: int) -> bytes | None:
    """The payload of the file's ``moov`` box (read with seeks past everything else), or None."""
    off = 0
    while off + 8 <= file_size:
        f.seek(off)
        head = f.read(16)
        if len(head) < 8:
            return None
        size, typ = struct.unpack(">I4s", head[:8])
        hl = 8
        if size == 1:
            if len(head) < 16:
                return None
            size, hl = struct.unpack(">Q", head[8:16])[0], 16
        elif size == 0:
            size = file_size - off
        if size < hl or off + size > file_size:
            return None
        if typ == b"moov":
            if size - hl > MAX_MOOV_BYTES:
                return None
            f.seek(off + hl)
            data = f.read(size - hl)
            return data if len(data) == size - hl else None
        off += size
    return None


def _meta_children_start(buf: bytes, start: int, end: int) -> int:
    """Where a ``meta`` box's children begin: ISO ``meta`` is a full box (4 bytes of version and
    flags first), QuickTime's is not; the first child is a ``hdlr`` box either way."""
    if end - start >= 12 and buf[start + 4:start + 8] == b"hdlr":
        return start
    return start + 4


def _data_value(buf: bytes, start: int, end: int):
    """The value of the first ``data`` box in an ``ilst`` item: str, int or float; None otherwise."""
    for typ, s, e in _boxes(buf, start, end):
        if typ != b"data" or e - s < 8:
            continue
        kind = int.from_bytes(buf[s + 1:s + 4], "big")
        raw = buf[s + 8:e]
        if kind == _UTF8:
            return raw.decode("utf-8", errors="replace")
        if kind in (_INT, _UINT) and len(raw) in (1, 2, 4, 8):
            return int.from_bytes(raw, "big", signed=kind == _INT)
        if kind == _F32 and len(raw) == 4:
            return struct.unpack(">f", raw)[0]
        if kind == _F64 and len(raw) == 8:
            return struct.unpack(">d", raw)[0]
        return None
    return None


def _meta_items(buf: bytes, start: int, end: int) -> dict:
    """{key: value} of one ``meta`` box's ``keys`` + ``ilst`` (QuickTime ``mdta`` metadata)."""
    keys: list[str] = []
    items: dict[str, object] = {}
    children = list(_boxes(buf, _meta_children_start(buf, start, end), end))
    for typ, s, e in children:
        if typ == b"keys" and e - s >= 8:
            count = struct.unpack(">I", buf[s + 4:s + 8])[0]
            off = s + 8
            for _ in range(count):
                if off + 8 > e:
                    break
                size = struct.unpack(">I", buf[off:off + 4])[0]
                if size < 8 or off + size > e:
                    break
                keys.append(buf[off + 8:off + size].decode("utf-8", errors="replace"))
                off += size
    for typ, s, e in children:
        if typ == b"ilst":
            for idx, is_, ie in _boxes(buf, s, e):
                i = int.from_bytes(idx, "big")
                if 1 <= i <= len(keys) and keys[i - 1] not in items:
                    value = _data_value(buf, is_, ie)
                    if value is not None:
                        items[keys[i - 1]] = value
    return items


def _walk(buf: bytes, start: int, end: int, depth: int, out: dict) -> None:
    for typ, s, e in _boxes(buf, start, end):
        if typ == b"meta":
            for k, v in _meta_items(buf, s, e).items():
                out.setdefault(k, v)
        elif typ in _CONTAINERS and depth < _MAX_DEPTH:
            _walk(buf, s, e, depth + 1, out)


def read_metadata_items(path) -> dict:
    """Every QuickTime metadata item (``mdta`` key → value) under the file's ``moov`` box.

    Track-level items are found as well as movie-level ones; when a key appears twice the first one
    (in file order) wins. Returns {} for a file that is not an MP4 / QuickTime movie or cannot be read.
    """
    try:
        p = Path(path)
        with open(p, "rb") as f:
            moov = _top_level_moov(f, p.stat().st_size)
    except OSError:
        return {}
    if moov is None:
        return {}
    out: dict = {}
    _walk(moov, 0, len(moov), 0, out)
    return out


def parse_focal_mm(value) -> float | None:
    """A focal length in mm from a metadata value: a number, or text such as ``"27"`` / ``"50.00mm"``;
    None when it holds no positive finite number (at most 2000 mm)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        mm = float(value)
    else:
        m = re.search(r"[-+]?\d+(?:\.\d+)?", str(value))
        if m is None:
            return None
        mm = float(m.group())
    return mm if math.isfinite(mm) and 0 < mm <= 2000 else None


def read_camera_metadata(path) -> dict:
    """The camera facts of a video file's container that the capture can use.

    Returns
    -------
    dict with ``focal_35mm`` (mm, the 35 mm-equivalent focal length) and ``focal_key`` (the key it
    came from) when the container has one, ``lens_model`` (text) when present; {} otherwise.
    """
    items = read_metadata_items(path)
    out: dict = {}
    mm = parse_focal_mm(items.get(KEY_FOCAL_35MM)) if KEY_FOCAL_35MM in items else None
    if mm is not None:
        out["focal_35mm"] = mm
        out["focal_key"] = KEY_FOCAL_35MM
    if isinstance(items.get(KEY_LENS_MODEL), str):
        out["lens_model"] = items[KEY_LENS_MODEL][:200]
    return out
