"""Deterministic test messages and a checker shared by the client scenarios."""
from __future__ import annotations

import functools
import hashlib
import random

PARTITIONS = 3


def make_message(i: int, partitions: int = PARTITIONS) -> tuple[int, bytes, bytes, list[tuple[str, bytes]]]:
    """Message i: (partition, key, value, headers). Values are 0..~400 bytes, mixing compressible
    text with binary bytes (all 256 byte values occur); headers include a binary and an empty one."""
    rnd = random.Random(i)
    text = b"" if i % 13 == 0 else ((b"value-%d-" % i) + b"abcdefghij" * 22)[: 20 + i % 200]
    binary = rnd.randbytes(0 if i % 7 == 0 else i % 97)
    value = text + binary
    key = b"key-%d" % i
    headers = [("h-index", b"%d" % i),
               ("h-bin", hashlib.sha256(key).digest()[: i % 17]),
               ("h-empty", b"")]
    return i % partitions, key, value, headers


@functools.lru_cache(maxsize=4)
def all_messages(n: int, partitions: int = PARTITIONS) -> tuple:
    return tuple(make_message(i, partitions) for i in range(n))


@functools.lru_cache(maxsize=4)
def expected_by_partition(n: int, partitions: int = PARTITIONS) -> dict[int, list[tuple[bytes, bytes, list]]]:
    out: dict[int, list] = {p: [] for p in range(partitions)}
    for p, k, v, h in all_messages(n, partitions):
        out[p].append((k, v, h))
    return out


def norm_headers(headers) -> list[tuple[str, bytes]]:
    """Client header lists -> [(str, bytes)], None values as b"" (librdkafka/kafka-python differ)."""
    if not headers:
        return []
    return [(k if isinstance(k, str) else k.decode(), v if v is not None else b"") for k, v in headers]


def check_partition(p: int, got: list[tuple[int, bytes, bytes, list]], want: list[tuple[bytes, bytes, list]],
                    first_offset: int = 0) -> None:
    """got: [(offset, key, value, headers)] in consumption order. Asserts byte-for-byte equality,
    order, and contiguous offsets starting at first_offset."""
    assert len(got) == len(want), f"partition {p}: got {len(got)} messages, want {len(want)}"
    for j, ((off, k, v, h), (wk, wv, wh)) in enumerate(zip(got, want)):
        assert off == first_offset + j, f"partition {p}: message #{j} has offset {off}, want {first_offset + j}"
        assert k == wk, f"partition {p} offset {off}: key {k!r} != {wk!r}"
        assert v == wv, f"partition {p} offset {off}: value differs (len {len(v or b'')} vs {len(wv)})"
        assert norm_headers(h) == wh, f"partition {p} offset {off}: headers {h!r} != {wh!r}"
