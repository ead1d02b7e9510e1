#!/usr/bin/python3
"""The gRPC API of atpd (atp/grpc_server.h), driven by a client atpd did not
write: Python's grpcio with a pass-through serializer, and the classes flatc
generates from fbs/atp.fbs.

Every method and every error code, deadlines, a 10 MB message refused,
admission control, a hot SKU reserved concurrently (exactly the stock is
confirmed, never more), Release across shards, TTL expiry, Scan against
atpctl export, and a SIGKILL after which a retried reservation is answered
as a duplicate and new ones go on.

usage: grpc_api.py ATPD ATPCTL
"""
import concurrent.futures
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import flatbuffers
import grpc

ATPD, ATPCTL = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TMP = tempfile.mkdtemp(prefix="atp-grpc-")
subprocess.run(["flatc", "--python", "-o", TMP + "/py", ROOT + "/fbs/atp.fbs"], check=True)
sys.path.insert(0, TMP + "/py")
from atp.v1 import (AtpBatchQuery, AtpBatchReply, AtpQuery, AtpReply, PositionAtp,  # noqa: E402
                    ReleaseReply, ReserveReply, ScanRequest)
from reserve_wire import ALL_OR_NOTHING, PARTIAL, PER_LINE, release_req, reserve_req, vector  # noqa: E402

C = grpc.StatusCode
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


# ---- messages ----

def strings(b, items):
    return [b.CreateString(s) for s in items]


def query_table(b, sku, locs=()):
    ls = strings(b, locs)
    s = b.CreateString(sku)
    v = vector(b, AtpQuery.StartLocationsVector, ls) if ls else None
    AtpQuery.Start(b)
    AtpQuery.AddSku(b, s)
    if v is not None:
        AtpQuery.AddLocations(b, v)
    return AtpQuery.End(b)


def query(sku, locs=()):
    b = flatbuffers.Builder(64)
    b.Finish(query_table(b, sku, locs))
    return bytes(b.Output())


def batch(queries):
    b = flatbuffers.Builder(256)
    qs = [query_table(b, s, l) for s, l in queries]
    v = vector(b, AtpBatchQuery.StartQueriesVector, qs)
    AtpBatchQuery.Start(b)
    AtpBatchQuery.AddQueries(b, v)
    b.Finish(AtpBatchQuery.End(b))
    return bytes(b.Output())


def scan_req(after="", limit=0):
    b = flatbuffers.Builder(64)
    s = b.CreateString(after) if after else None
    ScanRequest.Start(b)
    if s is not None:
        ScanRequest.AddAfterSku(b, s)
    ScanRequest.AddLimit(b, limit)
    b.Finish(ScanRequest.End(b))
    return bytes(b.Output())


# ---- the daemon ----

class Daemon:
    def __init__(self, name, *settings):
        self.data = os.path.join(TMP, name)
        self.settings = list(settings)
        self.log = os.path.join(TMP, name + ".log")
        self.start()

    def start(self):
        args = [ATPD, "--data", self.data, "--set", "listen=127.0.0.1:0", "--set", "grpc_listen=127.0.0.1:0", "--set", "metrics_listen=127.0.0.1:0"]
        # Tables sized to the tests' days: a sanitizer build touches every page of them at start.
        for s in ["max_positions=131072", "max_lines=262144"] + self.settings:
            args += ["--set", s]
        start = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        self.proc = subprocess.Popen(args, stderr=open(self.log, "a"))
        for _ in range(1200):  # 60 s: a sanitizer build faults its tables in slowly
            text = open(self.log).read()[start:]
            m = re.search(r"event stream listening on \S+ \(port (\d+)\)", text)
            g = re.search(r"grpc listening on \S+ \(port (\d+)\)", text)
            if m and g:
                self.tcp, self.grpc = int(m.group(1)), int(g.group(1))
                self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.grpc)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit("atpd did not start: " + open(self.log).read())

    def send(self, csv_text):
        path = os.path.join(TMP, "events-%d.csv" % time.monotonic_ns())
        with open(path, "w") as f:
            f.write("event_id,source,seq,type,sku,location,qty,ref,to_location,reason\n" + csv_text)
        subprocess.run([ATPCTL, "send", "--tcp", "127.0.0.1:%d" % self.tcp, path], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def unary(self, method, body, timeout=10):
        return self.channel.unary_unary(method)(body, timeout=timeout)

    def error_of(self, method, body, timeout=10):
        try:
            self.unary(method, body, timeout)
        except grpc.RpcError as e:
            return e.code(), e.details() or ""
        return C.OK, ""

    def atp(self, sku, locs=()):
        r = AtpReply.AtpReply.GetRootAs(self.unary("/atp.v1.Atp/GetAtp", query(sku, locs)))
        pos = [(r.Positions(i).Location().decode(), r.Positions(i).OnHand(), r.Positions(i).Reserved(),
                r.Positions(i).Atp(), r.Positions(i).Version()) for i in range(r.PositionsLength())]
        return pos, r.NetworkAtp()

    def reserve(self, rid, lines, partial=False, ttl=0, policy=None):
        r = ReserveReply.ReserveReply.GetRootAs(
            self.unary("/atp.v1.Atp/Reserve", reserve_req(rid, lines, partial, ttl, policy)))
        return [r.Lines(i).Confirmed() for i in range(r.LinesLength())], r.Duplicate()

    def release(self, rid):
        r = ReleaseReply.ReleaseReply.GetRootAs(self.unary("/atp.v1.Atp/Release", release_req(rid)))
        return r.Released(), r.Found()

    def scan(self, after="", limit=0):
        out = []
        for m in self.channel.unary_stream("/atp.v1.Atp/Scan")(scan_req(after, limit), timeout=30):
            p = PositionAtp.PositionAtp.GetRootAs(m)
            out.append((p.Sku().decode(), p.Location().decode(), p.OnHand(), p.Held(), p.Reserved(),
                        p.SafetyStock(), p.Atp()))
        return out

    def kill(self, sig=signal.SIGKILL):
        self.channel.close()
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


def main():
    d = Daemon("main", "shards=4", "workers=1", "tick_ms=50")
    rows, seq = [], 0

    def ev(typ, sku, loc, qty, ref=""):
        nonlocal seq
        seq += 1
        rows.append("%d,wms,%d,%s,%s,%s,%d,%s,,\n" % (seq, seq, typ, sku, loc, qty, ref))

    ev("RECEIPT", "SKU-1", "DC1", 100)
    ev("RECEIPT", "SKU-1", "DC2", 50)
    ev("RECEIPT", "SKU-2", "DC1", 10)
    ev("RECEIPT", "HOT", "DC1", 200)
    ev("RECEIPT", "TTL", "DC1", 10)
    ev("RECEIPT", "DL", "DC1", 10)
    ev("SAFETY", "SKU-2", "DC1", 2)
    for i in range(12):
        ev("RECEIPT", "MANY-%02d" % i, "DC1", 5)
    for i in range(6):
        ev("RECEIPT", "WHOLE-%d" % i, "DC1", 4)
    d.send("".join(rows))

    # Health
    check(d.unary("/grpc.health.v1.Health/Check", b"") == b"\x08\x01", "health: SERVING")
    check(d.unary("/grpc.health.v1.Health/Check", b"\x0a\x0aatp.v1.Atp") == b"\x08\x01", "health of atp.v1.Atp: SERVING")
    check(d.error_of("/grpc.health.v1.Health/Check", b"\x0a\x04nope")[0] == C.NOT_FOUND, "health of an unknown service: NOT_FOUND")

    # GetAtp
    pos, net = d.atp("SKU-1")
    check([p[0] for p in pos] == ["DC1", "DC2"] and [p[3] for p in pos] == [100, 50] and net == 150,
          "GetAtp: every location in order, network ATP their sum")
    pos, net = d.atp("SKU-1", ["DC2", "NOWHERE"])
    check(pos[0][:4] == ("DC2", 50, 0, 50) and pos[1] == ("NOWHERE", 0, 0, 0, 0) and net == 50,
          "GetAtp: named locations only, an unknown one as zeros")
    check(d.atp("SKU-2")[1] == 8, "GetAtp: safety stock is not promised")
    code, msg = d.error_of("/atp.v1.Atp/GetAtp", query("NOPE"))
    check(code == C.NOT_FOUND, "GetAtp of an unknown SKU: NOT_FOUND (%s)" % msg)
    code, msg = d.error_of("/atp.v1.Atp/GetAtp", query(""))
    check(code == C.INVALID_ARGUMENT and "sku" in msg, "GetAtp without a SKU: INVALID_ARGUMENT naming sku (%s)" % msg)
    code, msg = d.error_of("/atp.v1.Atp/GetAtp", query("SKU-1", ["x" * 40]))
    check(code == C.INVALID_ARGUMENT and "locations[0]" in msg, "a location too long: INVALID_ARGUMENT naming it (%s)" % msg)
    code, msg = d.error_of("/atp.v1.Atp/GetAtp", b"\x01\x02garbage")
    check(code == C.INVALID_ARGUMENT, "garbage: INVALID_ARGUMENT (%s)" % msg)
    code, msg = d.error_of("/atp.v1.Atp/NoSuchMethod", b"")
    check(code == C.UNIMPLEMENTED, "an unknown method: UNIMPLEMENTED")
    code, msg = d.error_of("/atp.v1.Atp/GetAtp", b"\0" * (10 << 20))
    check(code == C.RESOURCE_EXHAUSTED, "a 10 MB message: RESOURCE_EXHAUSTED (%s)" % msg)

    # GetAtpBatch
    r = AtpBatchReply.AtpBatchReply.GetRootAs(d.unary("/atp.v1.Atp/GetAtpBatch",
                                                      batch([("SKU-1", ()), ("NOPE", ()), ("SKU-2", ("DC1",))])))
    check(r.RepliesLength() == 3 and r.Replies(0).NetworkAtp() == 150 and r.Replies(1).PositionsLength() == 0
          and r.Replies(2).NetworkAtp() == 8, "GetAtpBatch: a reply per query, an unknown SKU empty")
    code, msg = d.error_of("/atp.v1.Atp/GetAtpBatch", batch([("SKU-1", ()), ("", ())]))
    check(code == C.INVALID_ARGUMENT and "queries[1].sku" in msg, "GetAtpBatch: the bad query named (%s)" % msg)

    # Reserve
    check(d.reserve("R1", [("SKU-1", "DC1", 30), ("SKU-2", "DC1", 5)]) == ([30, 5], False), "Reserve: lines confirmed")
    check(d.atp("SKU-1", ["DC1"])[0][0][2:4] == (30, 70), "Reserve: reserved 30, ATP 70")
    check(d.reserve("R1", [("SKU-1", "DC1", 30), ("SKU-2", "DC1", 5)]) == ([30, 5], True), "Reserve retried: the first answer, duplicate")
    check(d.atp("SKU-1", ["DC1"])[0][0][2:4] == (30, 70), "Reserve retried: nothing reserved twice")
    check(d.reserve("R2", [("SKU-2", "DC1", 50)]) == ([0], False), "Reserve beyond ATP: nothing confirmed")
    check(d.reserve("R3", [("SKU-2", "DC1", 50)], partial=True) == ([3], False), "Reserve with allow_partial: what there is")
    for body, code_want, field in [
        (reserve_req("R4", [("SKU-1", "DC1", 0)]), C.INVALID_ARGUMENT, "lines[0].qty"),
        (reserve_req("R4", []), C.INVALID_ARGUMENT, "lines"),
        (reserve_req("", [("SKU-1", "DC1", 1)]), C.INVALID_ARGUMENT, "reservation_id"),
        (reserve_req("R4", [("SKU-1", "DC1", 1), ("SKU-1", "DC1", 2)]), C.INVALID_ARGUMENT, "lines[1]"),
        (reserve_req("R4", [("SKU-1", "DC1", 1), ("SKU-1", "", 2)]), C.INVALID_ARGUMENT, "lines[1].location"),
        (reserve_req("R4", [("SKU-1", "DC1", 1), ("NOPE", "DC1", 1)]), C.NOT_FOUND, "lines[1]"),
        (reserve_req("R4", [("NOPE", "DC1", 1)]), C.NOT_FOUND, "lines[0]: no position NOPE at DC1"),  # the shard's answer
        (reserve_req("R4", [("SKU-1", "DC9", 1)]), C.NOT_FOUND, "lines[0]: no position SKU-1 at DC9"),
    ]:
        code, msg = d.error_of("/atp.v1.Atp/Reserve", body)
        check(code == code_want and field in msg, "Reserve refused: %s %s (%s)" % (code_want.name, field, msg))
    check(d.atp("SKU-1", ["DC1"])[0][0][2] == 30, "refused Reserves applied nothing")
    check(d.error_of("/atp.v1.Atp/GetAtp", query("NOPE"))[0] == C.NOT_FOUND and "DC9" not in [p[0] for p in d.atp("SKU-1")[0]],
          "a Reserve never creates a position")
    check(d.reserve("R4", [("SKU-1", "DC1", 1)]) == ([1], False), "the refused id reserves afterwards")
    check(d.release("R4") == (1, True), "... and releases")

    # Reserve, policy ALL_OR_NOTHING: a ship-complete order over 4 shards
    whole = [("WHOLE-%d" % i, "DC1", 3) for i in range(5)]
    short = whole + [("WHOLE-5", "DC1", 5)]
    check(d.reserve("W1", short, policy=ALL_OR_NOTHING) == ([0] * 6, False),
          "ALL_OR_NOTHING with one line short: nothing confirmed")
    check(all(d.atp("WHOLE-%d" % i)[1] == 4 for i in range(6)), "... and nothing held anywhere")
    check(d.reserve("W2", whole, policy=ALL_OR_NOTHING) == ([3] * 5, False), "ALL_OR_NOTHING that fits: every line")
    check(d.reserve("W2", whole, policy=ALL_OR_NOTHING) == ([3] * 5, True), "... retried: the first answer")
    check(d.reserve("W1", short, policy=ALL_OR_NOTHING) == ([0] * 6, True), "the refused order retried: still nothing")
    check(d.reserve("W3", [("WHOLE-5", "DC1", 4)], policy=PER_LINE) == ([4], False), "PER_LINE, as before")
    check(d.reserve("W4", [("WHOLE-0", "DC1", 3)], policy=PARTIAL) == ([1], False), "PARTIAL: what ATP covers")
    for body, field in [
        (reserve_req("W5", whole, partial=True, policy=ALL_OR_NOTHING), "allow_partial"),
        (reserve_req("W5", whole, policy=7), "policy"),
    ]:
        code, msg = d.error_of("/atp.v1.Atp/Reserve", body)
        check(code == C.INVALID_ARGUMENT and field in msg, "Reserve refused: %s (%s)" % (field, msg))
    check(d.release("W2") == (15, True), "Release of a whole order")

    # Release
    check(d.release("R1") == (35, True), "Release: every line back")
    check(d.atp("SKU-1", ["DC1"])[0][0][2:4] == (0, 100), "Release: ATP restored")
    check(d.release("R1") == (0, False), "Release again: nothing found")
    many = [("MANY-%02d" % i, "DC1", 2) for i in range(12)]
    check(d.reserve("BIG", many) == ([2] * 12, False), "Reserve of 12 lines over 4 shards")
    check(d.release("BIG") == (24, True), "Release of 12 lines over 4 shards (several rounds per shard)")
    check(all(d.atp("MANY-%02d" % i)[1] == 5 for i in range(12)), "... every line released")
    code, msg = d.error_of("/atp.v1.Atp/Release", release_req(""))
    check(code == C.INVALID_ARGUMENT and "reservation_id" in msg, "Release without an id: INVALID_ARGUMENT")

    # TTL: the lines lapse on the engine's (wall) clock
    check(d.reserve("T1", [("TTL", "DC1", 4)], ttl=1500) == ([4], False), "Reserve with a TTL")
    check(d.atp("TTL")[1] == 6, "... held")
    deadline = time.time() + 20
    while d.atp("TTL")[1] != 10 and time.time() < deadline:
        time.sleep(0.1)
    check(d.atp("TTL")[1] == 10, "... and lapsed after its TTL")

    # Deadlines (grpc-timeout): a call that cannot finish in time, made so by stopping the daemon while the
    # call waits (a tiny timeout alone races a fast server). The server's own handling of a spent
    # grpc-timeout is proven in grpc_abuse.py with raw frames.
    d.proc.send_signal(signal.SIGSTOP)
    try:
        code, _ = d.error_of("/atp.v1.Atp/Reserve", reserve_req("DL", [("DL", "DC1", 1)]), timeout=0.2)
    finally:
        d.proc.send_signal(signal.SIGCONT)
    check(code == C.DEADLINE_EXCEEDED, "a Reserve past its deadline: DEADLINE_EXCEEDED")

    # A hot SKU: N clients x M reserves of 1 against a stock of 200: exactly 200 confirmed
    def client(k):
        ch = grpc.insecure_channel("127.0.0.1:%d" % d.grpc)
        call = ch.unary_unary("/atp.v1.Atp/Reserve")
        got = 0
        for j in range(60):
            r = ReserveReply.ReserveReply.GetRootAs(call(reserve_req("HOT-%d-%d" % (k, j), [("HOT", "DC1", 1)]), timeout=30))
            got += r.Lines(0).Confirmed()
        ch.close()
        return got

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        confirmed = sum(pool.map(client, range(8)))
    pos, net = d.atp("HOT")
    check(confirmed == 200 and pos[0][2] == 200 and net == 0,
          "hot SKU: 8 clients x 60 reserves against 200: %d confirmed, reserved %d, ATP %d" % (confirmed, pos[0][2], net))

    # Scan, and atpctl export through it
    everything = d.scan()
    check(everything == sorted(everything) and len(everything) == 24, "Scan: every position in (sku, location) order")
    check(d.scan(after="MANY-05") == [p for p in everything if p[0] > "MANY-05"], "Scan after a SKU")
    check(d.scan(limit=3) == everything[:3], "Scan with a limit")
    out = subprocess.run([ATPCTL, "export", "--grpc", "127.0.0.1:%d" % d.grpc], capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    check(out.returncode == 0 and lines[0] == "sku,location,on_hand,held,reserved,safety_stock,atp"
          and lines[1:] == [",".join(map(str, p)) for p in everything], "atpctl export: the positions CSV, via Scan")
    out = subprocess.run([ATPCTL, "atp", "--grpc", "127.0.0.1:%d" % d.grpc, "SKU-1"], capture_output=True, text=True)
    check(out.returncode == 0 and out.stdout.splitlines()[-1] == "network_atp,150", "atpctl atp: " + out.stdout)
    out = subprocess.run([ATPCTL, "reserve", "--grpc", "127.0.0.1:%d" % d.grpc, "CLI-1", "SKU-1", "DC2", "7"],
                         capture_output=True, text=True)
    check(out.returncode == 0 and "SKU-1,DC2,7,7" in out.stdout, "atpctl reserve")
    out = subprocess.run([ATPCTL, "reserve", "--grpc", "127.0.0.1:%d" % d.grpc, "--policy", "all-or-nothing", "CLI-2",
                          "WHOLE-1", "DC1", "4", "WHOLE-2", "DC1", "9"], capture_output=True, text=True)
    check(out.returncode == 0 and "WHOLE-1,DC1,4,0" in out.stdout and "WHOLE-2,DC1,9,0" in out.stdout,
          "atpctl reserve --policy all-or-nothing: " + out.stdout)
    out = subprocess.run([ATPCTL, "release", "--grpc", "127.0.0.1:%d" % d.grpc, "CLI-1"], capture_output=True, text=True)
    check(out.returncode == 0 and "released,7" in out.stdout, "atpctl release")
    out = subprocess.run([ATPCTL, "atp", "--grpc", "127.0.0.1:%d" % d.grpc, "NOPE"], capture_output=True, text=True)
    check(out.returncode == 1 and "NOT_FOUND" in out.stderr, "atpctl atp of an unknown SKU: exit 1, NOT_FOUND")

    # Admin/Snapshot through atpctl snapshot: a new snapshot in every shard, written when answered
    def snaps():
        return set(glob.glob(os.path.join(d.data, "shard-*", "snap-*.snap")))
    shards = len(glob.glob(os.path.join(d.data, "shard-*")))
    before = snaps()
    out = subprocess.run([ATPCTL, "snapshot", "--grpc", "127.0.0.1:%d" % d.grpc, "before an upgrade"],
                         capture_output=True, text=True, timeout=60)
    new = snaps() - before
    check(out.returncode == 0 and ("snapshot written: %d shards" % shards) in out.stdout and len(new) == shards,
          "atpctl snapshot: %s%s(%d new files)" % (out.stdout, out.stderr, len(new)))
    check("Admin/Snapshot: a snapshot asked for: before an upgrade" in open(d.log).read(), "its reason in atpd's log")
    check(d.error_of("/atp.v1.Admin/Snapshot", b"\x01\x02\x03")[0] == C.INVALID_ARGUMENT,
          "Admin/Snapshot: a damaged request is INVALID_ARGUMENT")
    out = subprocess.run([ATPCTL, "verify", d.data], capture_output=True, text=True, timeout=60)
    check(out.returncode == 0 and "0 problems" in out.stdout, "atpctl verify beside the running atpd")

    # A crash: what was answered survives, a retry is a duplicate, new reservations go on
    check(d.reserve("KEEP", [("SKU-1", "DC1", 11)]) == ([11], False), "a reservation before the crash")
    d.kill()
    d.start()
    check(d.reserve("KEEP", [("SKU-1", "DC1", 11)]) == ([11], True), "after SIGKILL: its retry answers the first result")
    check(d.atp("SKU-1", ["DC1"])[0][0][2] == 11, "after SIGKILL: reserved once")
    check(d.reserve("AFTER", [("SKU-1", "DC1", 1)]) == ([1], False), "after SIGKILL: new reservations go on")
    check(d.error_of("/atp.v1.Atp/GetAtp", query("NOPE"))[0] == C.NOT_FOUND,
          "after SIGKILL: the WAL's refused Reserve of NOPE replayed as refused, no position")
    code, msg = d.error_of("/atp.v1.Atp/Reserve", reserve_req("R5", [("NOPE", "DC1", 1)]))
    check(code == C.NOT_FOUND and "lines[0]" in msg, "after SIGKILL: a Reserve of NOPE is still NOT_FOUND (%s)" % msg)
    # The refusal was @grpc's last event and took no seq: after a crash the next call takes that seq again
    d.kill()
    d.start()
    check(d.reserve("REUSE", [("SKU-1", "DC1", 2)]) == ([2], False), "after SIGKILL: the refused event's seq serves the next call")
    d.kill()
    d.start()
    check(d.reserve("REUSE", [("SKU-1", "DC1", 2)]) == ([2], True) and d.atp("SKU-1", ["DC1"])[0][0][2] == 14,
          "after a second SIGKILL: that call replayed once, beside the refusal before it under the same seq")
    out = subprocess.run([ATPCTL, "verify", d.data], capture_output=True, text=True, timeout=60)
    check(out.returncode == 0 and "0 problems" in out.stdout, "atpctl verify: a refused and an applied event under one seq are no problem (%s)" % out.stdout[-300:])

    # Draining: SIGTERM, then every call is UNAVAILABLE
    check(d.kill(signal.SIGTERM) == 0, "SIGTERM: a clean stop")
    ch = grpc.insecure_channel("127.0.0.1:%d" % d.grpc)
    try:
        ch.unary_unary("/atp.v1.Atp/GetAtp")(query("SKU-1"), timeout=2)
        code = C.OK
    except grpc.RpcError as e:
        code = e.code()
    check(code == C.UNAVAILABLE, "after the drain: UNAVAILABLE")
    ch.close()

    # Admission control: a daemon that takes 2 calls at a time refuses the rest with RESOURCE_EXHAUSTED
    small = Daemon("small", "grpc_max_calls=2")
    small.send("1,wms,1,RECEIPT,A,DC1,1000000,,,\n")
    call = small.channel.unary_unary("/atp.v1.Atp/Reserve")
    futures = [call.future(reserve_req("AC-%d" % i, [("A", "DC1", 1)]), timeout=30) for i in range(300)]
    codes = []
    for f in futures:
        try:
            f.result()
            codes.append(C.OK)
        except grpc.RpcError as e:
            codes.append(e.code())
    ok, exhausted = codes.count(C.OK), codes.count(C.RESOURCE_EXHAUSTED)
    check(ok >= 2 and exhausted > 0 and ok + exhausted == 300,
          "admission control: %d answered, %d RESOURCE_EXHAUSTED, others: %s" % (
              ok, exhausted, [c.name for c in codes if c not in (C.OK, C.RESOURCE_EXHAUSTED)][:5]))
    check(small.atp("A")[0][0][2] == ok, "... and exactly the answered ones reserved")
    check(small.kill(signal.SIGTERM) == 0, "the small daemon stops cleanly")


try:
    main()
finally:
    for p in subprocess.run(["pgrep", "-f", TMP], capture_output=True, text=True).stdout.split():
        os.kill(int(p), signal.SIGKILL)
    if not failures:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print("logs kept in", TMP)
print("grpc_api: %d failures" % len(failures))
sys.exit(1 if failures else 0)
