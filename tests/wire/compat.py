#!/usr/bin/python3
"""FlatBuffers compatibility, both ways, between atpd's C layer and the
reference tools (flatc and the Python runtime over flatc-generated classes).

For every sample message:
  reference -> C: the sample is built by `flatc -b` and, separately, by the
      Python runtime; wire_echo decodes each with atpd's verifier and
      accessors and builds it again with atpd's builders;
  C -> reference: what wire_echo wrote is decoded by `flatc --json` and by
      the Python runtime, and must equal the sample field for field.
Absent fields, defaults, empty strings and empty vectors are part of the
samples. Usage: compat.py FLATC WIRE_ECHO FBS_DIR WORK_DIR
"""
import importlib
import json
import os
import subprocess
import sys

FLATC, ECHO, FBS, WORK = sys.argv[1:5]

# The schema as the test needs it: per table, (json name, kind, detail).
EVENT_TYPES = ["NONE", "RECEIPT", "PICK", "ADJUST", "COUNT", "HOLD", "UNHOLD",
               "TRANSFER", "SAFETY", "RESERVE", "RELEASE"]
TABLES = {
    "atp.wire.Event": [
        ("event_id", "u64", None), ("source", "string", None), ("seq", "u64", None),
        ("type", "enum", EVENT_TYPES), ("sku", "string", None), ("location", "string", None),
        ("qty", "i64", None), ("ref", "string", None), ("to_location", "string", None),
        ("reason", "string", None), ("occurred_at", "u64", None), ("ttl_ms", "u64", None),
        ("allow_partial", "bool", None), ("event_key", "string", None)],
    "atp.wire.EventBatch": [("events", "tables", "atp.wire.Event")],
    "atp.wire.Ack": [("source", "string", None), ("durable_seq", "u64", None),
                     ("refused", "structs", ("atp.wire.Refusal", [("seq", "u64"), ("code", "i32")])),
                     ("next_seq", "u64", None), ("error", "i32", None), ("reason", "string", None)],
    "atp.wire.Hello": [("source", "string", None)],
    "atp.wire.Welcome": [("durable_seq", "u64", None), ("error", "i32", None), ("reason", "string", None)],
    "atp.v1.AtpQuery": [("sku", "string", None), ("locations", "strings", None)],
    "atp.v1.PositionAtp": [("sku", "string", None), ("location", "string", None), ("on_hand", "i64", None),
                           ("held", "i64", None), ("reserved", "i64", None), ("safety_stock", "i64", None),
                           ("atp", "i64", None), ("version", "u64", None)],
    "atp.v1.AtpReply": [("positions", "tables", "atp.v1.PositionAtp"), ("network_atp", "i64", None)],
    "atp.v1.AtpBatchQuery": [("queries", "tables", "atp.v1.AtpQuery")],
    "atp.v1.AtpBatchReply": [("replies", "tables", "atp.v1.AtpReply")],
    "atp.v1.ReserveLine": [("sku", "string", None), ("location", "string", None), ("qty", "i64", None)],
    "atp.v1.ReserveRequest": [("reservation_id", "string", None), ("lines", "tables", "atp.v1.ReserveLine"),
                              ("ttl_ms", "u64", None), ("allow_partial", "bool", None)],
    "atp.v1.LineResult": [("sku", "string", None), ("location", "string", None), ("requested", "i64", None),
                          ("confirmed", "i64", None)],
    "atp.v1.ReserveReply": [("reservation_id", "string", None), ("lines", "tables", "atp.v1.LineResult"),
                            ("duplicate", "bool", None)],
    "atp.v1.ReleaseRequest": [("reservation_id", "string", None)],
    "atp.v1.ReleaseReply": [("released", "i64", None), ("found", "bool", None)],
    "atp.v1.ScanRequest": [("after_sku", "string", None), ("limit", "u32", None)],
    "atp.v1.SubscribeRequest": [("channel", "string", None), ("resume_token", "bytes", None)],
    "atp.v1.Delta": [("channel", "string", None), ("seq", "u64", None), ("sku", "string", None),
                     ("location", "string", None), ("atp", "i64", None), ("previous_atp", "i64", None),
                     ("version", "u64", None),
                     ("kind", "enum", ["UPDATE", "SNAPSHOT", "RESYNC", "LIVE", "HEARTBEAT", "CONFLATED"]),
                     ("shard", "u32", None), ("index", "u32", None), ("sku_atp", "i64", None),
                     ("token", "bytes", None)],
}

EVENT_FULL = {"event_id": 18446744073709551615, "source": "wms-dc1", "seq": 42, "type": "RESERVE",
              "sku": "SKU-\u00e9,\"x\"", "location": "DC1", "qty": -9223372036854775807,
              "ref": "SO-1", "to_location": "ST2", "reason": "DAMAGE", "occurred_at": 1700000000000,
              "ttl_ms": 30000, "allow_partial": True}
POSITION = {"sku": "SKU-1", "location": "DC1", "on_hand": 10, "held": 1, "reserved": 2, "safety_stock": 3,
            "atp": 4, "version": 18446744073709551615}
SAMPLES = [
    ("event.fbs", "atp.wire.EventBatch", {"events": [
        EVENT_FULL,
        {"event_id": 2, "source": "wms", "seq": 1, "type": "RECEIPT", "sku": "S", "location": "L", "qty": 5},
        {"event_key": "E000118075", "source": "wms", "seq": 2, "type": "PICK", "sku": "S", "location": "L",
         "qty": 1},
        {},  # every field absent
        {"type": "RELEASE", "ref": "R", "qty": 0, "allow_partial": False},
    ]}),
    ("event.fbs", "atp.wire.EventBatch", {"events": []}),
    ("event.fbs", "atp.wire.EventBatch", {}),
    ("event.fbs", "atp.wire.Ack", {"source": "wms", "durable_seq": 77,
                                   "refused": [{"seq": 78, "code": -1}, {"seq": 90, "code": -3}]}),
    ("event.fbs", "atp.wire.Ack", {"source": "wms", "durable_seq": 0, "refused": []}),
    ("event.fbs", "atp.wire.Ack", {}),
    ("event.fbs", "atp.wire.Ack", {"source": "wms", "durable_seq": 5, "next_seq": 9,
                                   "error": -21, "reason": "a newer connection claimed this source"}),
    ("event.fbs", "atp.wire.Hello", {"source": "wms-dc1"}),
    ("event.fbs", "atp.wire.Welcome", {"durable_seq": 123456789}),
    ("event.fbs", "atp.wire.Welcome", {}),
    ("event.fbs", "atp.wire.Welcome", {"error": -20, "reason": "too many connections"}),
    ("atp.fbs", "atp.v1.AtpQuery", {"sku": "SKU-1", "locations": ["DC1", "ST,2"]}),
    ("atp.fbs", "atp.v1.AtpQuery", {"sku": "SKU-1", "locations": []}),
    ("atp.fbs", "atp.v1.AtpQuery", {"sku": "SKU-1"}),
    ("atp.fbs", "atp.v1.PositionAtp", POSITION),
    ("atp.fbs", "atp.v1.PositionAtp", {}),
    ("atp.fbs", "atp.v1.AtpReply", {"positions": [POSITION, {"sku": "S", "location": "L"}], "network_atp": 7}),
    ("atp.fbs", "atp.v1.AtpReply", {"positions": []}),
    ("atp.fbs", "atp.v1.AtpBatchQuery", {"queries": [{"sku": "A", "locations": ["L"]}, {"sku": "B"}, {}]}),
    ("atp.fbs", "atp.v1.AtpBatchReply", {"replies": [{"positions": [POSITION], "network_atp": 5}, {}]}),
    ("atp.fbs", "atp.v1.ReserveRequest", {"reservation_id": "SO-1", "ttl_ms": 900000, "allow_partial": True,
                                          "lines": [{"sku": "S", "location": "DC1", "qty": 3},
                                                    {"sku": "T", "location": "DC2", "qty": 1}, {}]}),
    ("atp.fbs", "atp.v1.ReserveRequest", {"reservation_id": "SO-2", "lines": []}),
    ("atp.fbs", "atp.v1.ReserveReply", {"reservation_id": "SO-1", "duplicate": True,
                                        "lines": [{"sku": "S", "location": "DC1", "requested": 3, "confirmed": 2}]}),
    ("atp.fbs", "atp.v1.ReleaseRequest", {"reservation_id": "SO-1"}),
    ("atp.fbs", "atp.v1.ReleaseReply", {"released": 4, "found": True}),
    ("atp.fbs", "atp.v1.ReleaseReply", {}),
    ("atp.fbs", "atp.v1.ScanRequest", {"after_sku": "SKU-9", "limit": 4294967295}),
    ("atp.fbs", "atp.v1.SubscribeRequest", {"channel": "marketplace-eu", "resume_token": [1, 0, 255, 7]}),
    ("atp.fbs", "atp.v1.SubscribeRequest", {"channel": "web"}),
    ("delta.fbs", "atp.v1.Delta", {"channel": "web", "seq": 9, "sku": "S", "location": "L", "atp": 3,
                                   "previous_atp": 5, "version": 12, "kind": "RESYNC"}),
    ("delta.fbs", "atp.v1.Delta", {"channel": "web", "seq": 18446744073709551615, "sku": "S", "location": "L",
                                   "atp": 3, "previous_atp": 5, "version": 12, "kind": "CONFLATED",
                                   "shard": 4294967295, "index": 7, "sku_atp": -1, "token": [9, 8, 0, 255]}),
    ("delta.fbs", "atp.v1.Delta", {"channel": "web", "seq": 1}),
]


def camel(name):
    return "".join(p.capitalize() for p in name.split("_"))


def module(qualified):
    return importlib.import_module(qualified)


def short(qualified):
    return qualified.rsplit(".", 1)[1]


def normalize(table, d):
    """The sample as a reader of any correct implementation sees it."""
    out = {}
    for name, kind, detail in TABLES[table]:
        v = d.get(name)
        if kind in ("u64", "i64", "i32", "u32"):
            out[name] = v or 0
        elif kind == "bool":
            out[name] = bool(v)
        elif kind == "enum":
            out[name] = v if v is not None else detail[0]
        elif kind == "string":
            out[name] = v or None  # an empty string travels as an absent one
        elif kind == "tables":
            out[name] = [normalize(detail, e) for e in (v or [])]
        elif kind in ("strings", "bytes"):
            out[name] = list(v or [])
        elif kind == "structs":
            out[name] = [{f: e.get(f, 0) for f, _ in detail[1]} for e in (v or [])]
    return out


def py_read(table, obj):
    out = {}
    for name, kind, detail in TABLES[table]:
        m = camel(name)
        if kind == "string":
            v = getattr(obj, m)()
            out[name] = v.decode() if v else None
        elif kind == "enum":
            out[name] = detail[getattr(obj, m)()]
        elif kind == "bool":
            out[name] = bool(getattr(obj, m)())
        elif kind == "tables":
            out[name] = [py_read(detail, getattr(obj, m)(j)) for j in range(getattr(obj, m + "Length")())]
        elif kind == "strings":
            out[name] = [getattr(obj, m)(j).decode() for j in range(getattr(obj, m + "Length")())]
        elif kind == "bytes":
            out[name] = [getattr(obj, m)(j) for j in range(getattr(obj, m + "Length")())]
        elif kind == "structs":
            out[name] = [{f: getattr(getattr(obj, m)(j), camel(f))() for f, _ in detail[1]}
                         for j in range(getattr(obj, m + "Length")())]
        else:
            out[name] = getattr(obj, m)()
    return out


def py_build(b, table, d):
    """Build d with the Python runtime; children first, as FlatBuffers requires."""
    mod, name = module(table), short(table)
    refs = {}
    for fname, kind, detail in TABLES[table]:
        if fname not in d:
            continue
        v = d[fname]
        if kind == "string":
            refs[fname] = b.CreateString(v)
        elif kind == "tables":
            children = [py_build(b, detail, e) for e in v]
            getattr(mod, name + "Start" + camel(fname) + "Vector")(b, len(children))
            for c in reversed(children):
                b.PrependUOffsetTRelative(c)
            refs[fname] = b.EndVector()
        elif kind == "strings":
            strs = [b.CreateString(x) for x in v]
            getattr(mod, name + "Start" + camel(fname) + "Vector")(b, len(strs))
            for x in reversed(strs):
                b.PrependUOffsetTRelative(x)
            refs[fname] = b.EndVector()
        elif kind == "bytes":
            getattr(mod, name + "Start" + camel(fname) + "Vector")(b, len(v))
            for x in reversed(v):
                b.PrependUint8(x)
            refs[fname] = b.EndVector()
        elif kind == "structs":
            smod = module(detail[0])
            getattr(mod, name + "Start" + camel(fname) + "Vector")(b, len(v))
            for e in reversed(v):
                getattr(smod, "Create" + short(detail[0]))(b, *[e.get(f, 0) for f, _ in detail[1]])
            refs[fname] = b.EndVector()
    getattr(mod, name + "Start")(b)
    for fname, kind, detail in TABLES[table]:
        if fname not in d:
            continue
        add = getattr(mod, name + "Add" + camel(fname))
        v = d[fname]
        if fname in refs:
            add(b, refs[fname])
        elif kind == "enum":
            add(b, detail.index(v))
        else:
            add(b, v)
    return getattr(mod, name + "End")(b)


def run(*args):
    return subprocess.run(args, capture_output=True, text=True)


def c_echo(table, src, dst):
    r = run(ECHO, short(table), src, dst)
    if r.returncode != 0:
        raise AssertionError(f"wire_echo refused {src}: {r.stderr.strip()}")


def flatc_json(schema, table, binary, out_dir):
    r = run(FLATC, "--json", "--strict-json", "--raw-binary", "--root-type", table, "-o", out_dir,
            os.path.join(FBS, schema), "--", binary)
    if r.returncode != 0:
        raise AssertionError(f"flatc could not decode {binary}: {r.stderr.strip()}")
    with open(os.path.join(out_dir, os.path.basename(binary)[:-4] + ".json")) as f:
        return json.load(f)


def main():
    import flatbuffers
    os.makedirs(WORK, exist_ok=True)
    py_dir = os.path.join(WORK, "py")
    r = run(FLATC, "--python", "-o", py_dir, *[os.path.join(FBS, s) for s in ("event.fbs", "atp.fbs", "delta.fbs")])
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, py_dir)

    passed = failed = 0
    for i, (schema, table, sample) in enumerate(SAMPLES):
        want = normalize(table, sample)
        case = os.path.join(WORK, f"case{i}")
        os.makedirs(case, exist_ok=True)
        sample_json = os.path.join(case, "sample.json")
        with open(sample_json, "w") as f:
            json.dump(sample, f)
        checks = []
        try:
            # Reference builders: flatc from JSON, and the Python runtime.
            r = run(FLATC, "-b", "--root-type", table, "-o", case, os.path.join(FBS, schema), sample_json)
            assert r.returncode == 0, r.stderr
            b = flatbuffers.Builder(256)
            b.Finish(py_build(b, table, sample))
            with open(os.path.join(case, "python.bin"), "wb") as f:
                f.write(b.Output())
            for origin in ("sample", "python"):
                c_out = os.path.join(case, f"c_from_{origin}.bin")
                c_echo(table, os.path.join(case, origin + ".bin"), c_out)
                # Reference readers: flatc to JSON, and the Python runtime.
                got_flatc = normalize(table, flatc_json(schema, table, c_out, case))
                with open(c_out, "rb") as f:
                    data = bytearray(f.read())
                got_py = py_read(table, getattr(module(table), short(table)).GetRootAs(data, 0))
                checks.append((f"{origin} -> C -> flatc", got_flatc))
                checks.append((f"{origin} -> C -> python", got_py))
            for what, got in checks:
                assert got == want, f"{what}:\n got  {got}\n want {want}"
            print(f"ok - {short(table)} sample {i}: {len(checks)} round trips")
            passed += 1
        except AssertionError as e:
            print(f"not ok - {short(table)} sample {i}: {e}")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
