"""Malformed and unsupported requests on a raw socket. What Apache Kafka 3.9 does was
determined by running it (see README.md, "Bad input: what Kafka does"); each case asserts that
behaviour in a form both brokers can meet, then checks that the broker process is alive and that
a NEW connection still gets a successful ApiVersions answer."""
import random
import socket
import struct
import time

import pytest

from harness import kwire as w

MAX_REQUEST = 104857600  # socket.request.max.bytes default
CLOSE_WAIT = 5.0


def assert_healthy(broker):
    assert broker.running(), f"{broker.kind} died:\n{broker.log_tail()}"
    apis = w.api_versions(broker.host, broker.port, timeout=5)
    assert 18 in apis


def send_expect_close(broker, raw: bytes, timeout: float = CLOSE_WAIT):
    """Send raw bytes; the broker must close the connection without answering."""
    with w.connect(broker.host, broker.port) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            return  # closed already
        assert w.wait_closed(s, timeout), f"connection still open {timeout}s after {raw[:40]!r}"


# Requests whose framing is fine but whose contents are not parseable / not servable.
# Apache Kafka 3.9 closes the connection (no response) for every one of these.
CLOSE_CASES = {
    # frame length
    "negative_frame_length": w.i32(-1) + b"\x00" * 16,
    "negative_frame_length_min": w.i32(-2**31) + b"\x00" * 16,
    "oversized_frame_length": w.i32(MAX_REQUEST + 1) + w.header_v1(18, 0, 1),
    "oversized_frame_length_max_int": w.i32(2**31 - 1) + w.header_v1(18, 0, 1),
    "zero_frame_length": w.i32(0),
    # truncated: the frame is complete but the request inside it is cut short
    "header_cut_after_api_key": w.frame(b"\x00\x12\x00"),
    "header_cut_in_correlation_id": w.frame(w.i16(18) + w.i16(0) + b"\x00"),
    "metadata_body_missing": w.frame(w.header_v1(3, 1, 5)),
    # a length prefix larger than the bytes left
    "client_id_longer_than_frame": w.frame(w.i16(18) + w.i16(0) + w.i32(5) + w.i16(300) + b"ab"),
    "topic_name_longer_than_frame": w.frame(w.header_v1(3, 1, 5) + w.i32(1) + w.i16(500) + b"abc"),
    "array_count_larger_than_frame": w.frame(w.header_v1(3, 1, 5) + w.i32(1_000_000)),
    "array_count_max_int": w.frame(w.header_v1(3, 1, 5) + w.i32(2**31 - 1)),
    "compact_array_count_larger_than_frame": w.frame(w.header_v2(3, 9, 5) + w.uvarint(1_000_000)),
    "compact_string_longer_than_frame": w.frame(w.header_v2(19, 5, 5) + w.uvarint(2) + w.uvarint(1_000_000) + b"ab"),
    "produce_records_longer_than_frame": w.frame(
        w.header_v1(0, 3, 5) + w.string(None) + w.i16(1) + w.i32(1000) + w.i32(1) + w.string("x") +
        w.i32(1) + w.i32(0) + w.i32(10000) + b"abc"),
    "null_topics_array_in_metadata_v0": w.frame(w.header_v1(3, 0, 5) + w.i32(-1)),
    # unknown API keys
    "unknown_api_key_200": w.frame(w.header_v1(200, 0, 5)),
    "unknown_api_key_32767": w.frame(w.header_v1(32767, 0, 5)),
    "negative_api_key": w.frame(w.header_v1(-1, 0, 5)),
    # unsupported versions of APIs other than ApiVersions
    "metadata_v99": w.frame(w.header_v2(3, 99, 5) + b"\x00"),
    "metadata_negative_version": w.frame(w.header_v1(3, -1, 5) + w.i32(0)),
    "produce_v99": w.frame(w.header_v2(0, 99, 5) + b"\x00"),
    "fetch_v99": w.frame(w.header_v2(1, 99, 5) + b"\x00"),
    "create_topics_v99": w.frame(w.header_v2(19, 99, 5) + b"\x00"),
    "list_offsets_v99": w.frame(w.header_v2(2, 99, 5) + b"\x00"),
}


@pytest.mark.parametrize("case", list(CLOSE_CASES))
def test_bad_request_closes_connection(broker, case):
    send_expect_close(broker, CLOSE_CASES[case])
    assert_healthy(broker)


def test_frame_at_max_size_is_not_answered(broker):
    """A frame of exactly socket.request.max.bytes is legal; Kafka waits for its bytes.
    Sending only a header must get no answer (open and silent, or closed), and must not
    stop the broker from serving other connections meanwhile."""
    with w.connect(broker.host, broker.port) as s:
        s.sendall(w.i32(MAX_REQUEST) + w.header_v1(18, 0, 1))
        s.settimeout(1.0)
        try:
            assert s.recv(1) == b""  # closed is fine
        except socket.timeout:
            pass                     # open and waiting is fine
        except ConnectionResetError:
            pass
        assert_healthy(broker)


def test_truncated_frame_waits_and_others_are_served(broker):
    """A frame that announces more bytes than are sent gets no answer; the broker keeps
    serving other connections while it waits; the half-sent connection still closes cleanly."""
    with w.connect(broker.host, broker.port) as s:
        s.sendall(w.i32(100) + w.header_v1(18, 0, 1))  # 100 announced, 14 sent
        s.settimeout(1.0)
        try:
            data = s.recv(1)
            assert data == b"", f"unexpected answer to a truncated frame: {data!r}"
        except socket.timeout:
            pass
        except ConnectionResetError:
            pass
        assert_healthy(broker)
        s.shutdown(socket.SHUT_WR)  # EOF in the middle of a frame
        assert w.wait_closed(s, CLOSE_WAIT)
    assert_healthy(broker)


def _assert_api_versions_error_reply(resp: bytes, corr: int):
    got_corr, err, apis = w.parse_api_versions_v0(resp)
    assert got_corr == corr
    assert err == 35, f"error {err}, want 35 UNSUPPORTED_VERSION"
    assert 18 in apis, f"ApiVersions range missing from the error reply: {apis}"
    lo, hi = apis[18]
    assert lo == 0 and hi >= 3, apis[18]


@pytest.mark.parametrize("version", [99, 32767, -1])
def test_api_versions_unsupported_version(broker, version):
    """KIP-511: ApiVersions with a version the broker does not know gets a v0-format reply
    (response header v0) with error 35 and the broker's ApiVersions range, and the connection
    stays usable (librdkafka retries on it with a lower version)."""
    hdr = w.header_v2(18, version, 77) if version >= 3 else w.header_v1(18, version, 77)
    body = w.compact_string("sluice-compat") + w.compact_string("1.0") + b"\x00" if version >= 3 else b""
    with w.connect(broker.host, broker.port) as s:
        _assert_api_versions_error_reply(w.roundtrip(s, hdr + body), 77)
        corr, err, apis = w.parse_api_versions_v0(w.roundtrip(s, w.api_versions_request(78, 0)))
        assert (corr, err) == (78, 0) and 18 in apis
    assert_healthy(broker)


def test_api_versions_unsupported_version_garbage_body(broker):
    """The body of an ApiVersions request with an unknown version is not parsed."""
    with w.connect(broker.host, broker.port) as s:
        _assert_api_versions_error_reply(w.roundtrip(s, w.header_v2(18, 99, 5) + b"\xff" * 7), 5)
    assert_healthy(broker)


def test_good_request_answered_before_bad_one_closes(broker):
    """Pipelined: a valid ApiVersions then an unknown API key. The first gets its answer,
    then the connection is closed."""
    with w.connect(broker.host, broker.port) as s:
        s.sendall(w.frame(w.header_v1(18, 0, 1)) + w.frame(w.header_v1(200, 0, 2)))
        corr, err, _ = w.parse_api_versions_v0(w.recv_frame(s))
        assert (corr, err) == (1, 0)
        assert w.wait_closed(s, CLOSE_WAIT)
    assert_healthy(broker)


def _create_topics_v2(names: list[bytes]) -> bytes:
    body = w.i32(len(names))
    for n in names:
        body += w.i16(len(n)) + n + w.i32(1) + w.i16(1) + w.i32(0) + w.i32(0)
    return w.header_v1(19, 2, 11) + body + w.i32(10000) + w.i8(0)


def test_create_topics_invalid_names(broker, unique_topic):
    """CreateTopics answers INVALID_TOPIC_EXCEPTION (17) per invalid name; a valid name in the
    same request is created."""
    good = unique_topic("ok-name_1.x").encode()
    invalid = [b"", b".", b"..", b"bad/name", b"has space", b"a" * 250, b"tab\tname",
               "\u00fcnicode".encode(), b"a*b", b"colon:name", b"nul\x00name"]
    with w.connect(broker.host, broker.port) as s:
        r = w.Reader(w.roundtrip(s, _create_topics_v2(invalid + [good])))
    assert r.i32() == 11
    r.i32()  # throttle
    results = {}
    for _ in range(r.i32()):
        name = r.take(r.i16())
        results[name] = (r.i16(), r.string())
    for n in invalid:
        assert n in results, f"no result for {n!r}: {results}"
        assert results[n][0] == 17, f"{n!r}: error {results[n]}"
    assert results[good][0] == 0, results[good]
    assert_healthy(broker)


def test_create_topics_name_249_chars_is_valid(broker):
    name = ("x" * 217 + random.Random().randbytes(16).hex())[:249].encode()
    with w.connect(broker.host, broker.port) as s:
        r = w.Reader(w.roundtrip(s, _create_topics_v2([name])))
    r.i32(); r.i32()
    assert r.i32() == 1
    assert r.take(r.i16()) == name
    assert r.i16() == 0


def test_create_topics_invalid_utf8_name(broker):
    """A name that is not UTF-8: error 17, or the connection closed."""
    with w.connect(broker.host, broker.port) as s:
        s.sendall(w.frame(_create_topics_v2([b"\xff\xfebad"])))
        try:
            r = w.Reader(w.recv_frame(s))
        except ConnectionError:
            r = None
    if r is not None:
        r.i32(); r.i32()
        assert r.i32() == 1
        r.take(r.i16())
        assert r.i16() == 17
    assert_healthy(broker)


def test_metadata_auto_create_invalid_name(broker):
    """Metadata v4 with allow_auto_topic_creation=true for invalid names: error 17, not created."""
    body = w.i32(2) + w.string("bad/name") + w.string("") + w.i8(1)
    with w.connect(broker.host, broker.port) as s:
        r = w.Reader(w.roundtrip(s, w.header_v1(3, 4, 12) + body))
    assert r.i32() == 12
    r.i32()
    for _ in range(r.i32()):
        r.i32(); r.string(); r.i32(); r.string()
    r.string(); r.i32()
    errs = {}
    for _ in range(r.i32()):
        err = r.i16(); name = r.string(); r.i8()
        assert r.i32() == 0
        errs[name] = err
    assert errs == {"bad/name": 17, "": 17}, errs
    assert_healthy(broker)


def test_random_garbage_frames(broker):
    """200 deterministic random frames (random API key/version/body): any answer or a close,
    but the broker must survive and keep serving."""
    rng = random.Random(20261121)
    for i in range(200):
        key = rng.choice([0, 1, 2, 3, 8, 9, 10, 11, 18, 19, 20, 32, 37, rng.randrange(0, 32768)])
        ver = rng.randrange(-2, 20)
        body = rng.randbytes(rng.randrange(0, 200))
        payload = struct.pack(">hhi", key, ver, i) + body
        with w.connect(broker.host, broker.port) as s:
            try:
                s.sendall(w.frame(payload))
                s.settimeout(2.0)
                s.recv(65536)
            except (socket.timeout, ConnectionError, OSError):
                pass
        if i % 50 == 49:
            assert_healthy(broker)
    assert_healthy(broker)
