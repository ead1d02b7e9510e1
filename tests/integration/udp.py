#!/usr/bin/env python3
"""The event stream over UDP (atp/udp_server.h) with real processes: a
simulated day sent by `atpctl send --udp` while the sender loses 5% of its
datagrams and holds back 5% (reordered), in the file's order across its
sources: the table equals `atpctl import` of the same file; the day sent
again: every event a duplicate, nothing changes. Bad datagrams (truncated,
garbage, oversize, a length that is not the datagram's, a batch without
Hello whose events name no source, a source udp_sources does not allow, an
'@' source) are counted by reason and dropped, and the day after them is
still exact. Usage: udp.py ATPD ATPCTL [ORDER_LINES]"""
import atexit
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stream_wire import Reply, batch, hello  # noqa: E402

ATPD, ATPCTL = sys.argv[1], sys.argv[2]
LINES = sys.argv[3] if len(sys.argv) > 3 else "1000"
TMP = tempfile.mkdtemp(prefix="atp-udp-")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(*args, timeout=300):
    return subprocess.run([ATPCTL, *args], capture_output=True, text=True, timeout=timeout)


class Daemon:
    def __init__(self):
        self.log = os.path.join(TMP, "atpd.log")
        args = [ATPD, "--data", os.path.join(TMP, "data")]
        for s in ["listen=none", "grpc_listen=127.0.0.1:0", "metrics_listen=127.0.0.1:0", "udp_listen=127.0.0.1:0",
                  "udp_sources=wms,oms,site1-*", "clock=frozen", "max_positions=262144", "max_lines=262144"]:
            args += ["--set", s]
        self.proc = subprocess.Popen(args, stderr=open(self.log, "w"))
        for _ in range(1200):
            text = open(self.log).read()
            u = re.search(r"udp event stream on \S+ \(port (\d+)\)", text)
            g = re.search(r"grpc listening on \S+ \(port (\d+)\)", text)
            m = re.search(r"metrics listening on \S+ \(port (\d+)\)", text)
            if u and g and m and "atpd: serving" in text:
                self.udp, self.grpc, self.metrics = int(u.group(1)), int(g.group(1)), int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit("atpd did not start: " + open(self.log).read()[-3000:])

    def metric(self, name):
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics, timeout=10).read().decode()
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else None

    def export(self, path):
        return run("export", "--grpc", "127.0.0.1:%d" % self.grpc).stdout if not path else \
            open(path, "w").write(run("export", "--grpc", "127.0.0.1:%d" % self.grpc).stdout)


def exchange(sock, payload, timeout=2.0):
    """Send one datagram; the answer (a Reply, welcome or ack by what it decodes as) or None."""
    sock.sendto(payload, ("127.0.0.1", d.udp))
    sock.settimeout(timeout)
    try:
        data, _ = sock.recvfrom(65536)
    except socket.timeout:
        return None
    return data[4:]


d = Daemon()
atexit.register(lambda: d.proc.poll() is None and d.proc.kill())


def main():
    day = os.path.join(TMP, "day.csv")
    r = run("simday", "--out", day, "--order-lines", LINES, "--seed", "7")
    check(r.returncode == 0, "a simulated day of %s order lines" % LINES)
    ref = os.path.join(TMP, "reference.csv")
    r = run("import", day, "--frozen-clock", "--max-positions", "262144", "--max-lines", "262144", "--positions", ref)
    check(r.returncode == 0, "its reference table (atpctl import): %s" % r.stderr.strip()[-200:])

    # Bad datagrams first: each counted by its reason, nothing applied.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ok_batch = batch([{"event_id": "1", "seq": "1", "type": "RECEIPT", "sku": "X-1", "location": "DC1", "qty": "5"}])
    s.sendto(ok_batch[:-3], ("127.0.0.1", d.udp))                        # truncated
    s.sendto(b"\x10\x00\x00\x00garbage-garbage!", ("127.0.0.1", d.udp))  # a frame that does not verify
    s.sendto(struct.pack("<I", 64) + b"x" * 10, ("127.0.0.1", d.udp))     # a length beyond the datagram
    s.sendto(struct.pack("<I", 1996) + b"x" * 1996, ("127.0.0.1", d.udp))  # over udp_max_datagram
    s.sendto(ok_batch, ("127.0.0.1", d.udp))                              # a batch without Hello, no source named
    w = exchange(s, hello("@grpc"))
    check(w is not None and Reply(w, True).error == -25, "a Hello as an '@' source: Welcome ATP_E_FORBIDDEN")
    w = exchange(s, hello("other-site"))
    check(w is not None and Reply(w, True).error == -25, "a Hello as a source udp_sources does not allow: refused")
    src_batch = batch([{"event_id": "2", "seq": "1", "type": "RECEIPT", "sku": "X-1", "location": "DC1", "qty": "5",
                        "source": "other-site"}])
    s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s2.sendto(src_batch, ("127.0.0.1", d.udp))                            # sessionless, a source not allowed
    time.sleep(0.3)
    drops = {k: d.metric('atpd_udp_dropped_total{reason="%s"}' % k) for k in ("frame", "size", "no_hello", "source")}
    check(drops["frame"] == 3 and drops["size"] == 1 and drops["no_hello"] == 1 and drops["source"] == 3,
          "bad datagrams counted by reason: %s" % drops)

    # A sender's own Hello, a batch, its Ack; the same batch again: a duplicate.
    w = exchange(s, hello("site1-probe"))
    check(w is not None and Reply(w, True).error == 0 and Reply(w, True).durable == 0, "Hello: Welcome, durable_seq 0")
    a = exchange(s, ok_batch)
    check(a is not None and Reply(a, False).durable == 1, "a batch: its Ack once durable (durable_seq 1)")
    a = exchange(s, ok_batch)
    check(a is not None and Reply(a, False).durable == 1 and Reply(a, False).next_seq == 2,
          "the same batch again: answered at once, next_seq 2, nothing applied twice")
    gap = batch([{"event_id": "9", "seq": "5", "type": "RECEIPT", "sku": "X-1", "location": "DC1", "qty": "5"}])
    a = exchange(s, gap)
    check(a is not None and Reply(a, False).refused == [(5, -1)] and Reply(a, False).next_seq == 2,
          "a batch after a gap: refused ATP_E_GAP, next_seq 2")
    bad = batch([{"event_id": "10", "seq": "2", "type": "RECEIPT", "sku": "X-1", "location": "DC1", "qty": "0"}])
    a = exchange(s, bad)
    check(a is not None and Reply(a, False).refused == [(2, -3)] and Reply(a, False).next_seq == 2,
          "a malformed event: refused ATP_E_QTY in the Ack, its seq not consumed (next_seq 2)")
    out = run("atp", "--grpc", "127.0.0.1:%d" % d.grpc, "X-1").stdout
    check("X-1,DC1,5," in out, "X-1 holds 5 units: one receipt applied once (%s)" % out.strip().replace("\n", " | "))

    # The day, lossy and reordered.
    t = time.time()
    r = run("send", "--udp", "127.0.0.1:%d" % d.udp, day, "--drop-percent", "5", "--reorder-percent", "5")
    took = time.time() - t
    check(r.returncode == 0, "the day over UDP, 5%% lost and 5%% reordered: every event acknowledged (%.1f s; %s)" %
          (took, (r.stdout + r.stderr).strip().splitlines()[-3:]))
    got = os.path.join(TMP, "got.csv")
    d.export(got)
    want = "".join(line for line in open(ref) if not line.startswith("X-1,"))
    mine = "".join(line for line in open(got) if not line.startswith("X-1,"))
    check(mine == want, "the table equals atpctl import of the same file")
    r = run("send", "--udp", "127.0.0.1:%d" % d.udp, day)
    check(r.returncode == 0, "the day again: acknowledged")
    d.export(got)
    check("".join(line for line in open(got) if not line.startswith("X-1,")) == want, "... every event a duplicate: the table unchanged")
    d.proc.terminate()
    check(d.proc.wait(timeout=60) == 0, "atpd stops cleanly")
    print("%d failed" % len(failures))
    sys.exit(1 if failures else 0)


main()
