from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_classifier.data.idx import encode_idx, parse_idx, read_idx, write_idx
from mnist_classifier.errors import DataError


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path: Path, dtype: str, suffix: str) -> None:
    array = (np.arange(2 * 3 * 4) * 7 - 20).reshape(2, 3, 4).astype(dtype)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_header_layout() -> None:
    data = encode_idx(np.zeros((3, 2), np.uint8))
    assert data[:4] == b"\x00\x00\x08\x02" and data[4:12] == b"\x00\x00\x00\x03\x00\x00\x00\x02"
    assert len(data) == 12 + 6


GOOD = encode_idx(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GOOD[:-1], "truncated"),
        (GOOD + b"\x00", "trailing data"),
        (b"\x01" + GOOD[1:], "wrong magic number"),
        (GOOD[:2] + b"\x07" + GOOD[3:], "unknown IDX type code 0x07"),
        (GOOD[:3] + b"\x00", "zero dimensions"),
        (GOOD[:3] + b"\x05" + GOOD[4:8], "truncated header"),
        (b"\x00\x00", "too short"),
    ],
)
def test_corrupt_bytes_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_idx(data, "x.idx")


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(GOOD)[:-10])
    with pytest.raises(DataError, match=r"labels\.gz: not a valid gzip file"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "nope")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_data_error(data: bytes) -> None:
    try:
        array = parse_idx(data)
    except DataError:
        return
    assert encode_idx(array) == data


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=4, max_size=40))
def test_arbitrary_payload_after_valid_header(payload: bytes) -> None:
    data = b"\x00\x00\x08\x01\x00\x00\x00\x05" + payload
    if len(payload) == 5:
        assert parse_idx(data).tolist() == list(payload)
    else:
        with pytest.raises(DataError):
            parse_idx(data)


def test_a_gzip_bomb_is_refused_before_it_fills_memory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A small .gz that inflates past the limit stops at the limit; a file over it is not even read."""

    from mnist_classifier.data import idx

    monkeypatch.setattr(idx, "MAX_BYTES", 1000)
    assert (
        idx.decompress(gzip.compress(b"a" * 600) + gzip.compress(b"b" * 400), "two members") == b"a" * 600 + b"b" * 400
    )
    with pytest.raises(DataError, match=r"bomb\.gz: decompresses to over 0 MB"):
        idx.decompress(gzip.compress(bytes(1001)), "bomb.gz")
    (tmp_path / "big").write_bytes(bytes(1001))
    with pytest.raises(DataError, match="big: larger than 0 MB"):
        idx.read_bytes(tmp_path / "big")
