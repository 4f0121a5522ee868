#!/usr/bin/env python3
"""Cross-check generated codecs against kafka-python 3.x (an independent codec).

Not part of the build. Usage:
    SLUICE_PROTOCOL_DUMP_DIR=/tmp/dump build/bin/protocol_tests   # dumps <Name>_v<N>.bin
    compat-tests/.venv/bin/python protocol/codegen/xcheck_kafka_python.py /tmp/dump
For every dumped message/version that kafka-python knows, decodes our bytes with
kafka-python, checks everything was consumed, re-encodes and requires identical bytes.
"""
import importlib, os, pkgutil, re, sys
import kafka.protocol as kp
from kafka.protocol.api_message import ApiMessage
for m in pkgutil.walk_packages(kp.__path__, 'kafka.protocol.'):
    try: importlib.import_module(m.name)
    except Exception as e: pass
classes = {}
def walk(c):
    for s in c.__subclasses__():
        try:
            if getattr(s, '_class_version', None) is None and s._json is not None:
                classes.setdefault(s._json['name'], s)
        except Exception: pass
        walk(s)
walk(ApiMessage)
d = sys.argv[1]
ok = bad = skip = 0
for f in sorted(os.listdir(d)):
    m = re.fullmatch(r'(\w+?)(?:_null)?_v(\d+)\.bin', f)
    name, v = m.group(1), int(m.group(2))
    cls = classes.get(name)
    data = open(os.path.join(d, f), 'rb').read()
    if cls is None or v > cls.max_version or v < cls._valid_versions[0]:
        skip += 1; continue
    try:
        flexible = cls.flexible_version_q(v)
        fd = cls._struct.compiled_decode_from(v, compact=flexible, tagged=flexible, data_class=cls[None])
        obj, pos = fd(memoryview(data), 0)
        if pos != len(data):
            print('NOT ALL CONSUMED', f, pos, len(data))
        for a in ('_header', '_min_version', '_max_version'):
            try: getattr(obj, a)
            except AttributeError: setattr(obj, a, None)
        out = obj.encode(version=v)
        out = bytes(out)
        if out == data: ok += 1
        else:
            bad += 1
            # first differing byte
            i = next((i for i in range(min(len(out), len(data))) if out[i] != data[i]), min(len(out), len(data)))
            print('MISMATCH', f, 'len ours', len(data), 'theirs', len(out), 'first diff at', i)
    except Exception as e:
        bad += 1
        print('ERROR', f, type(e).__name__, e)
print('ok', ok, 'bad', bad, 'skipped', skip)
print('classes missing:', sorted({re.sub(r'(_null)?_v\d+\.bin', '', f) for f in os.listdir(d)} - set(classes)))
