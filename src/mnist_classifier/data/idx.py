"""Read and write IDX files (the MNIST format), raw or gzip-compressed, in pure NumPy.

Layout: two zero bytes, a type code, the number of dimensions, one big-endian uint32 per
dimension, then the values in big-endian order. The reader checks every part of it.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..utils import write_bytes

DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
CODES = {dtype.newbyteorder("="): code for code, dtype in DTYPES.items()}
MAX_BYTES = 1 << 30  # one IDX file's content; MNIST's largest is 47 MB, so this bounds a gzip bomb, not a dataset


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when its name ends in .gz."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise DataError(f"{path}: larger than {MAX_BYTES >> 20} MB; not an IDX file this tool reads")
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    return decompress(raw, str(path)) if path.suffix == ".gz" else raw


def decompress(raw: bytes, name: str) -> bytes:
    """gzip-decompress (every member) up to MAX_BYTES, turning any failure into a DataError naming the source."""
    out = bytearray()
    try:
        while raw:
            member = zlib.decompressobj(wbits=31)
            out += member.decompress(raw, MAX_BYTES + 1 - len(out))
            if len(out) > MAX_BYTES:
                raise DataError(f"{name}: decompresses to over {MAX_BYTES >> 20} MB; not an IDX file this tool reads")
            if not member.eof:
                raise zlib.error("compressed data ends early")
            raw = member.unused_data
    except zlib.error as e:
        raise DataError(f"{name}: not a valid gzip file ({e})") from None
    return bytes(out)


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Decode IDX bytes into a native-endian array; raise DataError for anything malformed."""
    if len(data) < 4:
        raise DataError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: wrong magic number {data[:4].hex()} (an IDX file starts with two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        raise DataError(f"{name}: unknown IDX type code 0x{code:02x}")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated header ({len(data)} bytes, {ndim} dimensions need {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a product of four 2**16 dimensions is 2**64
    actual = len(data) - header
    if actual != expected:
        raise DataError(
            f"{name}: payload is {actual} bytes but the header's shape {shape} needs {expected}"
            f" ({'truncated' if actual < expected else 'trailing data'})"
        )
    try:
        array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    except ValueError:  # a zero dimension beside dimensions whose product NumPy cannot index
        raise DataError(f"{name}: the header's shape {shape} is too large to hold") from None
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (.gz or raw) into a NumPy array."""
    return parse_idx(read_bytes(path), str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of an array of a supported dtype."""
    native = array.dtype.newbyteorder("=")
    if native not in CODES:
        raise DataError(f"IDX cannot store dtype {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise DataError(f"IDX cannot store an array of {array.ndim} dimensions")
    code = CODES[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, DTYPES[code]).tobytes()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an array as an IDX file, gzip-compressed when the name ends in .gz; atomically."""
    data = encode_idx(array)
    write_bytes(path, gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
