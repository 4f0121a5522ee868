"""The C program on Debian's librdkafka 2.0.2 (compat-tests/c/rdkafka_roundtrip.c)."""
import os
import subprocess
from pathlib import Path

import pytest

from harness import kwire
from harness.brokers import PROJECT_ROOT

BIN = Path(os.environ.get("RDKAFKA_ROUNDTRIP_BIN") or PROJECT_ROOT / "build" / "bin" / "rdkafka_roundtrip")
N = 100_000


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_c_roundtrip_100k(broker, unique_topic, codec):
    if not BIN.exists():
        pytest.fail(f"{BIN} not built (cmake --build build --target rdkafka_roundtrip)")
    topic = unique_topic(f"c-{codec}")
    r = subprocess.run([str(BIN), "-b", broker.bootstrap, "-t", topic, "-n", str(N), "-p", "3",
                        "-z", codec, "-c", "-T", "150"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr[-3000:]}"
    assert r.stdout.startswith("OK librdkafka 2.0.2"), r.stdout
    attrs = kwire.fetch_batch_attributes(broker.host, broker.port, topic, 0)
    kwire.assert_codec_used(attrs, codec)
