"""stream_wire.py — the TCP event stream's frames as the Python tests build
and read them (fbs/event.fbs through python3-flatbuffers, not atpd's code):
a frame, a Hello, and a Welcome or an Ack read field by field."""
import socket
import struct
import time

import flatbuffers
from flatbuffers import number_types as nt
from flatbuffers import table as fbtable


def frame(buf):
    return struct.pack("<I", len(buf)) + bytes(buf)


def hello(source):
    b = flatbuffers.Builder(64)
    s = b.CreateString(source)
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, s, 0)
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
