"""stream_wire.py — the TCP event stream's frames as the Python tests build
and read them (fbs/event.fbs through python3-flatbuffers, not atpd's code):
a frame, a Hello, an EventBatch of CSV-like rows, and a Welcome or an Ack read field by field."""
import socket
import struct
import time

import flatbuffers
from flatbuffers import number_types as nt
from flatbuffers import table as fbtable


TYPES = ["NONE", "RECEIPT", "PICK", "ADJUST", "COUNT", "HOLD", "UNHOLD", "TRANSFER", "SAFETY", "RESERVE", "RELEASE",
         "SUPPLY"]


def frame(buf):
    return struct.pack("<I", len(buf)) + bytes(buf)


def hello(source):
    b = flatbuffers.Builder(64)
    s = b.CreateString(source)
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, s, 0)
    b.Finish(b.EndObject())
    return frame(b.Output())


def event(b, row):
    """One Event table from a dict of the event CSV's columns (without "source": the Hello's)."""
    strings = {k: b.CreateString(row[k]) for k in ("source", "sku", "location", "ref", "to_location", "reason")
               if row.get(k)}
    key = None
    if row["event_id"] and not row["event_id"].isdigit():
        key = b.CreateString(row["event_id"])
    b.StartObject(15)
    if not key and row["event_id"]:
        b.PrependUint64Slot(0, int(row["event_id"]), 0)
    b.PrependUint64Slot(2, int(row["seq"]), 0)
    b.PrependInt64Slot(6, int(row["qty"] or 0), 0)
    b.PrependUint64Slot(10, int(row.get("occurred_at") or 0), 0)
    b.PrependUint64Slot(11, int(row.get("ttl_ms") or 0), 0)
    for slot, k in ((1, "source"), (4, "sku"), (5, "location"), (7, "ref"), (8, "to_location"), (9, "reason")):
        if k in strings:
            b.PrependUOffsetTRelativeSlot(slot, strings[k], 0)
    if key:
        b.PrependUOffsetTRelativeSlot(13, key, 0)
    t = row["type"]
    b.PrependUint8Slot(3, TYPES.index(t) if t in TYPES else int(t), 0)
    b.PrependBoolSlot(12, row.get("partial") in ("1", "true"), False)
    if row.get("date"):  # YYYY-MM-DD in the CSV, YYYYMMDD on the wire
        b.PrependUint32Slot(14, int(row["date"].replace("-", "")), 0)
    return b.EndObject()


def batch(rows):
    b = flatbuffers.Builder(4096)
    offs = [event(b, r) for r in rows]
    b.StartVector(4, len(offs), 4)
    for o in reversed(offs):
        b.PrependUOffsetTRelative(o)
    vec = b.EndVector()
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, vec, 0)
    b.Finish(b.EndObject())
    return frame(b.Output())


class Reply:
    """A Welcome (welcome=True) or an Ack, read field by field."""

    def __init__(self, buf, welcome):
        buf = bytearray(buf)
        t = fbtable.Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))

        def field(slot, flags, dflt=0):
            o = t.Offset(4 + 2 * slot)
            return t.Get(flags, o + t.Pos) if o else dflt

        def string(slot):
            o = t.Offset(4 + 2 * slot)
            return t.String(o + t.Pos).decode() if o else ""

        if welcome:
            self.durable, self.error, self.reason, self.refused = field(0, nt.Uint64Flags), field(1, nt.Int32Flags), string(2), []
            self.next_seq = 0
        else:
            self.durable, self.next_seq = field(1, nt.Uint64Flags), field(3, nt.Uint64Flags)
            self.error, self.reason = field(4, nt.Int32Flags), string(5)
            self.refused = []
            o = t.Offset(8)
            if o:
                start, n = t.Vector(o), t.VectorLen(o)
                for i in range(n):
                    seq = flatbuffers.encode.Get(flatbuffers.packer.uint64, buf, start + 16 * i)
                    code = flatbuffers.encode.Get(flatbuffers.packer.int32, buf, start + 16 * i + 8)
                    self.refused.append((seq, code))


def read_exact(s, n, deadline):
    out = b""
    while len(out) < n:
        s.settimeout(max(0.01, deadline - time.time()))
        try:
            chunk = s.recv(n - len(out))
        except (socket.timeout, ConnectionResetError):
            return None
        if not chunk:
            return None
        out += chunk
    return out


def reply(s, welcome, timeout=5.0):
    deadline = time.time() + timeout
    head = read_exact(s, 4, deadline)
    if head is None:
        return None
    body = read_exact(s, struct.unpack("<I", head)[0], deadline)
    return Reply(body, welcome) if body is not None else None
