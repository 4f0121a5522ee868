"""kcat (Debian's kcat 1.7.1 on librdkafka 2.0.2): 10,000-message round trip, metadata listing."""
import json
import subprocess

import pytest

from harness import ck

N = 10_000
P = 3


def kcat(*args, input=None, timeout=60):
    r = subprocess.run(["kcat", *args], input=input, capture_output=True, timeout=timeout)
    assert r.returncode == 0, f"kcat {' '.join(args)}: exit {r.returncode}\n{r.stderr.decode(errors='replace')[-3000:]}"
    return r.stdout


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_kcat_roundtrip_10k(broker, unique_topic, codec):
    topic = unique_topic(f"kcat-{codec}")
    ck.create_topic(broker.bootstrap, topic, P)
    want = {p: [] for p in range(P)}
    for i in range(N):
        want[i % P].append((f"key-{i}", f"value-{i}-" + "x" * (i % 150)))
    for p in range(P):
        lines = "".join(f"{k}\t{v}\n" for k, v in want[p]).encode()
        kcat("-P", "-b", broker.bootstrap, "-t", topic, "-p", str(p), "-K", "\t", "-z", codec,
             "-H", "source=kcat", "-H", f"part={p}", "-X", "acks=all", input=lines)
    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%p\t%o\t%k\t%s\t%h\n", timeout=90)
    got = {p: [] for p in range(P)}
    for line in out.decode().splitlines():
        part, off, k, v, h = line.split("\t")
        got[int(part)].append((int(off), k, v, h))
    for p in range(P):
        assert len(got[p]) == len(want[p]), f"partition {p}: {len(got[p])} of {len(want[p])}"
        for j, ((off, k, v, h), (wk, wv)) in enumerate(zip(got[p], want[p])):
            assert (off, k, v) == (j, wk, wv), f"partition {p} #{j}: {(off, k, v)} != {(j, wk, wv)}"
            assert h == f"source=kcat,part={p}", h


def test_kcat_metadata_json(broker, unique_topic):
    topic = unique_topic("kcat-md")
    ck.create_topic(broker.bootstrap, topic, P)
    md = json.loads(kcat("-L", "-J", "-b", broker.bootstrap, "-t", topic))
    assert [b["id"] for b in md["brokers"]] == [1]
    assert md["brokers"][0]["name"] == broker.bootstrap
    (t,) = [t for t in md["topics"] if t["topic"] == topic]
    assert sorted(p["partition"] for p in t["partitions"]) == list(range(P))
    assert all(p["leader"] == 1 for p in t["partitions"])
