#!/usr/bin/python3
"""One-off converter: Kafka message JSON schemas -> Sluice's own .schema format.

Not run by the build. Usage:
    protocol/codegen/convert_kafka_json.py <kafka-messages-dir> <out-dir> Name [Name...]
where Name is e.g. MetadataRequest (the JSON file's stem). Only facts are
carried over (names, types, versions, nullable/tagged/flexible versions, tags,
defaults); descriptions, comments and Java-only hints are dropped.
The format is documented in protocol/README.md.
"""
import json
import os
import re
import sys


def load_json(path):
    text = open(path, encoding="utf-8").read()
    # Kafka's files carry // comments (whole-line and trailing); strip them.
    out_lines = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("//"):
            continue
        out_lines.append(line)
    return json.loads("\n".join(out_lines))


def snake(name):
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


def fmt_default(value):
    v = str(value)
    if v == "null" or re.fullmatch(r"-?(0x[0-9a-fA-F]+|\d+)|true|false", v):
        return v
    # Quoted string default (JSON string escaping; no spaces needed in practice).
    return json.dumps(v)


def field_line(f, indent):
    parts = [f["name"], f["type"], f.get("versions", "0+")]
    if "nullableVersions" in f:
        parts.append("nullable=" + f["nullableVersions"])
    if "taggedVersions" in f:
        parts.append("tagged=" + f["taggedVersions"])
    if "tag" in f:
        parts.append("tag=" + str(f["tag"]))
    if "flexibleVersions" in f:
        parts.append("flexible=" + f["flexibleVersions"])
    if "default" in f:
        parts.append("default=" + fmt_default(f["default"]))
    return "  " * indent + " ".join(parts)


def emit_fields(fields, indent, out):
    for f in fields:
        out.append(field_line(f, indent))
        if "fields" in f:
            emit_fields(f["fields"], indent + 1, out)


def convert(d):
    out = []
    # Metadata-log and group-coordinator records are data structs whose api key is the record type.
    head = ["data" if d["type"] in ("metadata", "coordinator-key", "coordinator-value") else d["type"], d["name"]]
    if "apiKey" in d:
        head.append("api=" + str(d["apiKey"]))
    head.append("versions=" + d["validVersions"])
    head.append("flexible=" + d.get("flexibleVersions", "none"))
    if d.get("latestVersionUnstable"):
        head.append("latest-unstable")
    out.append(" ".join(head))
    emit_fields(d["fields"], 1, out)
    for cs in d.get("commonStructs", []):
        out.append("struct %s %s" % (cs["name"], cs.get("versions", "0+")))
        emit_fields(cs["fields"], 1, out)
    return out


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        sys.exit(2)
    src, dst, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(dst, exist_ok=True)
    for name in names:
        d = load_json(os.path.join(src, name + ".json"))
        lines = ["# %s (converted from Kafka's %s.json: facts only)" % (d["name"], name)]
        lines += convert(d)
        path = os.path.join(dst, snake(d["name"]) + ".schema")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
