#!/usr/bin/env python3
"""The pure-Python floor for `aztags lookup --file`, printing exactly what aztags prints.

    python benchmarks/floor_lookup_full.py ServiceTags_Public_YYYYMMDD.json[.gz] < addresses > out

`../shared/bench/floor_lookup.py` prints `ADDRESS<TAB>tag,tag,...`; `aztags lookup --file` prints
more per address: `ADDRESS`, then per matching (tag, prefix) a tab and `TAG,PREFIX,REGION,SERVICE`,
most specific first (longest prefix first, then tag name), the region and systemService as the
file gives them. This is the same floor (flat IPv4 segments built once from the raw file, then per
line inet_pton + bisect + a text cached per segment), extended to that output, so the benchmark
can compare the same content. Written without the project's code (stdlib only); IPv4 addresses
only, one per line, no validation report. benchmarks/run.py checks that its output equals
aztags' byte for byte on the 1M-address file before it times either.
"""

import gzip
import json
import sys
from bisect import bisect_right
from socket import AF_INET, inet_ntop, inet_pton

path = sys.argv[1]
with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
    doc = json.loads(f.read())
events = {}  # boundary address -> [(+1 or -1, (length, tag, prefix text))]
fields = {}  # (length, tag, prefix) -> "TAG,PREFIX,REGION,SERVICE"
for v in doc["values"]:
    name, p = v["name"], v["properties"]
    tail = f",{p['region']},{p['systemService']}"
    for text in p["addressPrefixes"]:
        if ":" in text:
            continue
        addr, _, ln = text.partition("/")
        length = int(ln)
        packed = inet_pton(AF_INET, addr)
        start = int.from_bytes(packed, "big")
        key = (length, name, f"{inet_ntop(AF_INET, packed)}/{length}")
        if key in fields:  # a (tag, prefix) pair listed twice counts once
            continue
        fields[key] = f"{name},{key[2]}{tail}"
        events.setdefault(start, []).append((1, key))
        events.setdefault(start + (1 << (32 - length)), []).append((-1, key))
starts, labels, active = [0], [""], set()
for point in sorted(events):
    for delta, key in events[point]:
        if delta > 0:
            active.add(key)
        else:
            active.discard(key)
    starts.append(point)
    ordered = sorted(active, key=lambda k: (-k[0], k[1]))  # most specific first, then tag name
    labels.append("".join("\t" + fields[k] for k in ordered))
out = sys.stdout.write
fb = int.from_bytes
for line in sys.stdin:
    text = line.strip()
    out(text + labels[bisect_right(starts, fb(inet_pton(AF_INET, text), "big")) - 1] + "\n")
