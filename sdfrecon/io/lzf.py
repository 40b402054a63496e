"""LZF decompression (liblzf's format), for PCD's ``DATA binary_compressed``.

A stream of tokens; each starts with a control byte c:

- c < 32: a literal run; the next c + 1 bytes are copied as they are.
- c >= 32: a back reference of length (c >> 5) + 2, where a length field of 7 continues in
  the next byte (added to it), at distance ((c & 31) << 8) + next byte + 1 behind the end
  of the output so far. The copy may overlap itself (a repeated pattern).

Written from the format's description; pure Python with one slice copy per token. Why not a
library (scripts/studies/lzf_decoders.py, docs/bad-input.md): python-lzf (C) decodes 170x
faster (6 ms against 1.0 s for the 3.6 MB of 300k points quantised to 1 mm, this decoder's
worst case; 17 ms against 0.3 ms for bunny.xyz), but it ships as source only (a C compiler
at install) and says of a damaged stream only "error in compressed data", returns None, or
returns it short; Open3D's reader returns an empty cloud with a warning. A second per MB
is small beside a reconstruction's minutes; the exact problem in the error is not.
"""

from __future__ import annotations


class LzfError(ValueError):
    """The compressed bytes are not a whole LZF stream of the expected size."""


def decompress(data: bytes | memoryview, size: int) -> bytes:
    """The ``size`` bytes that LZF stream ``data`` decompresses to; LzfError when it is
    truncated, refers back past its start or does not come to exactly ``size`` bytes."""
    out = bytearray()
    pos, end = 0, len(data)
    while pos < end:
        ctrl = data[pos]
        pos += 1
        if ctrl < 32:
            run = ctrl + 1
            if pos + run > end:
                raise LzfError(f"a literal run of {run} bytes is cut off at byte {end}")
            out += data[pos:pos + run]
            pos += run
        else:
            length = ctrl >> 5
            if length == 7:
                if pos >= end:
                    raise LzfError(f"a back reference is cut off at byte {end}")
                length += data[pos]
                pos += 1
            if pos >= end:
                raise LzfError(f"a back reference is cut off at byte {end}")
            distance = ((ctrl & 31) << 8) + data[pos] + 1
            pos += 1
            length += 2
            start = len(out) - distance
            if start < 0:
                raise LzfError(f"a back reference at byte {pos - 2} points {distance} bytes back, "
                               f"before the start of the data ({len(out)} bytes so far)")
            if distance >= length:
                out += out[start:start + length]
            else:  # overlapping: the last `distance` bytes repeat
                pattern = bytes(out[start:])
                out += (pattern * (length // distance + 1))[:length]
        if len(out) > size:
            raise LzfError(f"decompresses to more than the {size} bytes declared")
    if len(out) != size:
        raise LzfError(f"decompresses to {len(out)} bytes, not the {size} declared")
    return bytes(out)
