#!/usr/bin/python3
"""HTTP/2 abuse against atpd's gRPC port, with raw frames (Python's
hyperframe and hpack, not our code): rapid reset, a SETTINGS flood, a
huge header list, too many CONTINUATION frames, too many concurrent
streams, a grpc-timeout already spent, a wrong content-type, malformed
requests, a garbage preface, and more connections than the limit. Each
is answered as atp/grpc_server.h says; meanwhile an honest grpcio client keeps getting
answers, the daemon's RSS stays bounded, and it stops cleanly.

usage: grpc_abuse.py ATPD ATPCTL
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc
import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, RstStreamFrame,
                              SettingsFrame)

ATPD, ATPCTL = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="atp-h2abuse-")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM, REFUSED_STREAM = 0xb, 0x7
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Conn:
    """A raw HTTP/2 client connection."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        self.buf = b""
        self.next_id = 1

    def send(self, *frames, raw=b""):
        try:
            self.s.sendall(raw + b"".join(f.serialize() for f in frames))
            return True
        except OSError:
            return False

    def hello(self):
        self.send(SettingsFrame(0), raw=PREFACE)

    def headers(self, path="/atp.v1.Atp/GetAtp", extra=(), end_stream=False, ctype="application/grpc", fields=None):
        """A new stream's HEADERS: a gRPC request's fields (or exactly fields), then extra."""
        sid = self.next_id
        self.next_id += 2
        if fields is None:
            fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
                      ("content-type", ctype), ("te", "trailers")]
        block = self.enc.encode(list(fields) + list(extra))
        f = HeadersFrame(sid, block, flags=["END_HEADERS"] + (["END_STREAM"] if end_stream else []))
        return sid, f

    def frames(self, until, timeout=10):
        """Read frames until until(frame) is true or the peer closes; returns (frames, closed)."""
        got, end = [], time.time() + timeout
        self.s.settimeout(0.5)
        while time.time() < end:
            while len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                f.parse_body(memoryview(self.buf[9:9 + length]))
                self.buf = self.buf[9 + length:]
                if isinstance(f, HeadersFrame):
                    f.decoded = dict((k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v)
                                     for k, v in self.dec.decode(f.data))
                if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                    self.send(SettingsFrame(0, flags=["ACK"]))
                got.append(f)
                if until(f):
                    return got, False
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return got, True
            if not data:
                return got, True
            self.buf += data
        return got, False

    def close(self):
        self.s.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def start(*settings):
    log = os.path.join(TMP, "atpd.log")
    args = [ATPD, "--data", os.path.join(TMP, "data"), "--set", "listen=127.0.0.1:0", "--set", "grpc_listen=127.0.0.1:0", "--set", "metrics_listen=127.0.0.1:0"]
    for s in settings:
        args += ["--set", s]
    proc = subprocess.Popen(args, stderr=open(log, "w"))
    for _ in range(200):
        m = re.search(r"grpc listening on \S+ \(port (\d+)\)", open(log).read())
        if m:
            return proc, int(m.group(1))
        time.sleep(0.05)
    raise SystemExit("atpd did not start: " + open(log).read())


def main():
    proc, port = start("grpc_max_connections=64", "grpc_max_streams=32")
    honest = grpc.insecure_channel("127.0.0.1:%d" % port)
    health = honest.unary_unary("/grpc.health.v1.Health/Check")

    def still_serving(what):
        try:
            check(health(b"", timeout=10) == b"\x08\x01", "an honest client is served after " + what)
        except grpc.RpcError as e:
            check(False, "an honest client is served after %s (%s)" % (what, e.code()))

    still_serving("start")
    rss0 = rss_kb(proc.pid)

    # Rapid reset: HEADERS then RST_STREAM, in a loop
    c = Conn(port)
    c.hello()
    sent = 0
    for _ in range(200):
        batch = []
        for _ in range(100):
            sid, h = c.headers()
            batch += [h, RstStreamFrame(sid, error_code=8)]
        if not c.send(*batch):
            break
        sent += 100
    frames, closed = c.frames(lambda f: isinstance(f, GoAwayFrame))
    goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
    # nghttp2's limit (a burst of 1000, then 33 a second) ends the session with GOAWAY INTERNAL_ERROR; on a
    # slow machine the socket buffers may take all 20,000 before that GOAWAY reaches the sender
    check(sent >= 1000 and (goaway or (closed and sent < 20000)),
          "rapid reset: cut off after %d resets sent (GOAWAY %s)" % (sent, [f.error_code for f in goaway]))
    c.close()
    still_serving("a rapid reset")

    # SETTINGS flood
    c = Conn(port)
    c.hello()
    flood = 0
    for _ in range(100):
        if not c.send(*[SettingsFrame(0, settings={SettingsFrame.ENABLE_PUSH: 0}) for _ in range(100)]):
            break
        flood += 100
    frames, closed = c.frames(lambda f: isinstance(f, GoAwayFrame))
    goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
    check((goaway and goaway[0].error_code == ENHANCE_YOUR_CALM) or closed,
          "SETTINGS flood: cut off (%d sent)" % flood)
    c.close()
    still_serving("a SETTINGS flood")

    # A huge header list: far past max_header_list, in HEADERS + CONTINUATION frames
    c = Conn(port)
    c.hello()
    sid = c.next_id
    c.next_id += 2
    block = c.enc.encode([(":method", "POST"), (":scheme", "http"), (":path", "/atp.v1.Atp/GetAtp"),
                          (":authority", "x"), ("content-type", "application/grpc")] +
                         [("x-junk-%d" % i, "v" * 1000) for i in range(60)])
    pieces = [block[i:i + 16000] for i in range(0, len(block), 16000)]
    frames_out = [HeadersFrame(sid, pieces[0])] + [ContinuationFrame(sid, p) for p in pieces[1:]]
    frames_out[-1].flags.add("END_HEADERS")
    c.send(*frames_out)
    frames, closed = c.frames(lambda f: (isinstance(f, RstStreamFrame) and f.stream_id == sid) or isinstance(f, GoAwayFrame))
    check(any(isinstance(f, (RstStreamFrame, GoAwayFrame)) for f in frames) or closed,
          "a %d KB header list: the stream is reset" % (len(block) // 1024))
    c.close()
    # ... and too many CONTINUATION frames for one header block
    c = Conn(port)
    c.hello()
    sid, h = c.headers()
    h.flags.discard("END_HEADERS")
    c.send(h, *[ContinuationFrame(sid, c.enc.encode([("x-more-%d" % i, "y")])) for i in range(40)])
    frames, closed = c.frames(lambda f: isinstance(f, GoAwayFrame))
    check(any(isinstance(f, GoAwayFrame) for f in frames) or closed, "40 CONTINUATION frames: the connection is cut")
    c.close()
    still_serving("huge header lists")

    # Too many concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS is 32 here)
    c = Conn(port)
    c.hello()
    c.frames(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags)  # the server's settings, acked
    c.frames(lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags)
    c.send(*[c.headers()[1] for _ in range(200)])  # requests that never send their message
    frames, closed = c.frames(lambda f: False, timeout=2)
    refused = [f for f in frames if isinstance(f, RstStreamFrame) and f.error_code in (REFUSED_STREAM, 1)]
    goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
    # past the acknowledged limit nghttp2 ends the connection (PROTOCOL_ERROR); before it, it refuses streams
    check(len(refused) >= 168 or (goaway and goaway[0].error_code == 1),
          "200 streams against a limit of 32: %d refused%s" % (len(refused), goaway and ", GOAWAY %d" % goaway[0].error_code or ""))
    c.close()
    still_serving("too many streams")

    # grpc-timeout already spent, and a wrong content-type
    c = Conn(port)
    c.hello()
    sid, h = c.headers(extra=[("grpc-timeout", "0m")])
    c.send(h, DataFrame(sid, b"\0\0\0\0\0", flags=["END_STREAM"]))
    frames, _ = c.frames(lambda f: isinstance(f, HeadersFrame) and f.stream_id == sid)
    hdrs = [f.decoded for f in frames if isinstance(f, HeadersFrame) and f.stream_id == sid]
    check(hdrs and hdrs[0].get("grpc-status") == "4", "grpc-timeout 0m: DEADLINE_EXCEEDED (%s)" % hdrs)
    sid, h = c.headers(ctype="text/plain")
    c.send(h, DataFrame(sid, b"hello", flags=["END_STREAM"]))
    frames, _ = c.frames(lambda f: isinstance(f, HeadersFrame) and f.stream_id == sid)
    hdrs = [f.decoded for f in frames if isinstance(f, HeadersFrame) and f.stream_id == sid]
    check(hdrs and hdrs[0].get(":status") == "415", "content-type text/plain: HTTP 415 (%s)" % hdrs)
    sid, h = c.headers(extra=[("grpc-timeout", "soon")])
    c.send(h, DataFrame(sid, b"\0\0\0\0\0", flags=["END_STREAM"]))
    frames, _ = c.frames(lambda f: isinstance(f, HeadersFrame) and f.stream_id == sid)
    hdrs = [f.decoded for f in frames if isinstance(f, HeadersFrame) and f.stream_id == sid]
    check(hdrs and hdrs[0].get("grpc-status") == "3", "a malformed grpc-timeout: INVALID_ARGUMENT")
    sid, h = c.headers()
    c.send(h, DataFrame(sid, b"\0\0\0\0\x09abc", flags=["END_STREAM"]))
    frames, _ = c.frames(lambda f: isinstance(f, HeadersFrame) and f.stream_id == sid)
    hdrs = [f.decoded for f in frames if isinstance(f, HeadersFrame) and f.stream_id == sid]
    check(hdrs and hdrs[0].get("grpc-status") == "13", "a message shorter than its prefix: INTERNAL")
    c.close()

    # Malformed requests (RFC 9113 8.2 and 8.3): each stream is reset with PROTOCOL_ERROR, unanswered
    base = [(":method", "POST"), (":scheme", "http"), (":path", "/atp.v1.Atp/GetAtp"), (":authority", "x"),
            ("content-type", "application/grpc"), ("te", "trailers")]
    malformed = {
        "an uppercase header name": base + [("X-Trace", "1")],
        "no :path": [h for h in base if h[0] != ":path"],
        "no :method": [h for h in base if h[0] != ":method"],
        "a second :path": base + [(":path", "/atp.v1.Atp/Reserve")],
        "a pseudo-header after a regular one": base[:4] + [("content-type", "application/grpc"), (":scheme", "http")],
        "an unknown pseudo-header": base + [(":shoe", "size")],
        "a response pseudo-header": base + [(":status", "200")],
        "a connection header": base + [("connection", "keep-alive")],
        "a transfer-encoding header": base + [("transfer-encoding", "chunked")],
        "te other than trailers": [h for h in base if h[0] != "te"] + [("te", "gzip")],
        "a value with a line feed": base + [("x-note", "a\nb")],
        "a value with a NUL": base + [("x-note", "a\0b")],
        "a value with a leading space": base + [("x-note", " a")],
        "a name with a space": base + [("x note", "a")],
        "an empty :path": [h if h[0] != ":path" else (":path", "") for h in base],
    }
    def expect_protocol_error(c, sid, what):
        """The first answer on stream sid is RST_STREAM with PROTOCOL_ERROR, the connection kept."""
        answer = (RstStreamFrame, HeadersFrame)
        frames, closed = c.frames(lambda f: f.stream_id == sid and isinstance(f, answer))
        got = [f for f in frames if f.stream_id == sid and isinstance(f, answer)]
        check(not closed and got and isinstance(got[0], RstStreamFrame) and got[0].error_code == 1,
              "%s: the stream is reset with PROTOCOL_ERROR (%s)" %
              (what, closed and "closed" or got and type(got[0]).__name__ or "nothing"))

    c = Conn(port)
    c.hello()
    for what, hdrs in malformed.items():
        sid, h = c.headers(fields=hdrs)
        c.send(h, DataFrame(sid, b"\0\0\0\0\0", flags=["END_STREAM"]))
        expect_protocol_error(c, sid, what)
    for what, trailers, end in (("trailers with a pseudo-header", [(":path", "/x")], True),
                                ("trailers with an uppercase name", [("X-Trailer", "1")], True),
                                ("trailers that do not end the stream", [("x-trailer", "1")], False)):
        sid, h = c.headers()
        c.send(h, DataFrame(sid, b"\0\0\0\0\0"),
               HeadersFrame(sid, c.enc.encode(trailers), flags=["END_HEADERS"] + (["END_STREAM"] if end else [])))
        expect_protocol_error(c, sid, what)
    sid, h = c.headers(extra=[("x-note", "fine, with spaces inside"), ("user-agent", "grpc-python/1.0")])
    c.send(h, DataFrame(sid, b"\0\0\0\0\0", flags=["END_STREAM"]))
    frames, _ = c.frames(lambda f: isinstance(f, HeadersFrame) and f.stream_id == sid and "END_STREAM" in f.flags)
    hdrs = [f.decoded for f in frames if isinstance(f, HeadersFrame) and f.stream_id == sid]
    check(any("grpc-status" in h for h in hdrs), "after them, a well-formed call on the same connection is answered (%s)" % hdrs)
    c.close()
    still_serving("malformed requests")

    # A garbage preface
    c = Conn(port)
    c.send(raw=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 1000)
    _, closed = c.frames(lambda f: False, timeout=3)
    check(closed, "a garbage preface: the connection is closed")
    c.close()

    # More connections than the limit (64): the excess is closed at once, the honest client goes on
    socks = []
    for _ in range(300):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    time.sleep(0.5)
    closed_now = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed_now += 1
        except BlockingIOError:
            pass
        except OSError:
            closed_now += 1
    check(closed_now >= len(socks) - 64, "%d connections against a limit of 64: %d closed at once" % (len(socks), closed_now))
    for s in socks:
        s.close()
    time.sleep(0.3)
    still_serving("a connection storm")

    grown = rss_kb(proc.pid) - rss0
    check(grown < 128 * 1024, "RSS grew by %d KB through all of it (bound 128 MB)" % grown)
    honest.close()
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=30) == 0, "the daemon stops cleanly")


try:
    main()
finally:
    subprocess.run(["pkill", "-KILL", "-f", TMP])
    if not failures:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print("logs kept in", TMP)
print("grpc_abuse: %d failures" % len(failures))
sys.exit(1 if failures else 0)
