#!/usr/bin/python3
"""Hostile clients against atpd's TCP event stream, each a raw socket built
here (FlatBuffers from the python3-flatbuffers runtime, not atpd's code):
garbage bytes, a 4 GiB length prefix, a truncated frame then silence, a
slowloris Hello, protocol violations after the Hello, a sequence gap, a
takeover of a source, 10,000 connections at once, and a client that never
reads its acks. Meanwhile and afterwards two honest senders (atpctl send)
must succeed, the final table must equal the single-threaded core's, and
the daemon's memory must stay bounded.

Usage: hostile.py ATPD ATPCTL (KEEP=1 keeps the daemon's directory and log for a post-mortem)
"""
import os
import resource
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import flatbuffers

from stream_wire import frame, hello, reply  # noqa: E402

ATPD, ATPCTL = sys.argv[1], sys.argv[2]
E_GAP, E_SOURCE, E_PROTOCOL, E_LIMIT, E_SUPERSEDED, E_TIMEOUT = -1, -6, -19, -20, -21, -22
MAX_CONNECTIONS, MAX_BATCH, FRAME_TIMEOUT_MS, ACK_TIMEOUT_MS, IDLE_MS = 200, 100, 1000, 2000, 5000

passed = failed = 0


def check(what, ok):
    global passed, failed
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    if ok:
        passed += 1
    else:
        failed += 1


def batch(events, source=None):
    """events: (seq, sku, qty) RECEIPTs at DC01; source None: left to the Hello."""
    b = flatbuffers.Builder(1024)
    offs = []
    for seq, sku, qty in events:
        sk, loc = b.CreateString(sku), b.CreateString("DC01")
        src = b.CreateString(source) if source else None
        b.StartObject(13)
        b.PrependUint64Slot(0, seq, 0)        # event_id
        if src:
            b.PrependUOffsetTRelativeSlot(1, src, 0)
        b.PrependUint64Slot(2, seq, 0)        # seq
        b.PrependUOffsetTRelativeSlot(4, sk, 0)
        b.PrependUOffsetTRelativeSlot(5, loc, 0)
        b.PrependInt64Slot(6, qty, 0)
        b.PrependUint8Slot(3, 1, 0)           # RECEIPT
        offs.append(b.EndObject())
    b.StartVector(4, len(offs), 4)
    for o in reversed(offs):
        b.PrependUOffsetTRelative(o)
    vec = b.EndVector()
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, vec, 0)
    b.Finish(b.EndObject())
    return frame(b.Output())


def closed(s, timeout=5.0):
    """True once the server closed s (EOF or reset) within timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        s.settimeout(max(0.01, deadline - time.time()))
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    tmp = tempfile.mkdtemp()
    daemon = None
    try:
        files = []
        for k in (1, 2):
            path = os.path.join(tmp, f"h{k}.csv")
            subprocess.run([ATPCTL, "simday", "--out", path, "--skus", "500", "--order-lines", "8000", "--seed", str(k),
                            "--prefix", f"h{k}-", "--one-source"], check=True, stderr=subprocess.DEVNULL)
            files.append(path)
        every = os.path.join(tmp, "all.csv")
        with open(every, "w") as out:
            for i, path in enumerate(files):
                lines = open(path).read().splitlines(True)
                out.writelines(lines if i == 0 else lines[1:])
        reference = os.path.join(tmp, "reference.csv")
        subprocess.run([ATPCTL, "import", every, "--frozen-clock", "--positions", reference], check=True,
                       stdout=subprocess.DEVNULL)

        log = open(os.path.join(tmp, "atpd.log"), "w+")
        data = os.path.join(tmp, "data")
        daemon = subprocess.Popen([ATPD, "--data", data, "--set", "listen=127.0.0.1:0", "--set", "grpc_listen=none", "--set", "metrics_listen=none", "--set", "clock=frozen",
                                   "--set", "first_cpu=none", "--set", "router_cpu=none",
                                   "--set", f"max_connections={MAX_CONNECTIONS}", "--set", f"max_batch={MAX_BATCH}",
                                   "--set", f"frame_timeout_ms={FRAME_TIMEOUT_MS}",
                                   "--set", f"ack_timeout_ms={ACK_TIMEOUT_MS}", "--set", f"idle_ms={IDLE_MS}",
                                   "--set", "max_lines=262144"],
                                  stderr=log)
        port = None
        for _ in range(200):
            text = open(log.name).read()
            if "atpd: serving" in text:
                port = int(text.split("(port ")[1].split(")")[0])
                break
            time.sleep(0.05)
        check("atpd starts", port is not None)
        if port is None:
            return

        def connect():
            return socket.create_connection(("127.0.0.1", port), timeout=5)

        def honest(path, **kw):
            return subprocess.Popen([ATPCTL, "send", "--tcp", f"127.0.0.1:{port}", path, "--timeout", "60",
                                     "--batch", str(MAX_BATCH)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)

        base_rss = rss_kb(daemon.pid)

        s = connect()
        s.sendall(struct.pack("<I", 16) + b"\x07" * 16)
        r = reply(s, welcome=True)
        check("garbage: a Welcome with ATP_E_PROTOCOL and a reason", r is not None and r.error == E_PROTOCOL and r.reason)
        check("... then the close", closed(s))

        s = connect()
        s.sendall(b"\xff\xff\xff\xff" + b"x" * 100)
        r = reply(s, welcome=True)
        check("a 4 GiB length prefix: ATP_E_LIMIT at once", r is not None and r.error == E_LIMIT)
        check("... then the close", closed(s))

        s = connect()
        t0 = time.time()
        s.sendall(struct.pack("<I", 1000) + b"\x00" * 10)
        r = reply(s, welcome=True, timeout=10)
        waited = time.time() - t0
        check(f"a truncated frame then silence: ATP_E_TIMEOUT after {waited:.1f} s",
              r is not None and r.error == E_TIMEOUT and waited < 5)
        check("... then the close", closed(s))

        s = connect()
        t0 = time.time()
        trickle, cut = hello("slow"), False
        for i in range(len(trickle)):
            try:
                s.send(trickle[i:i + 1])
            except OSError:
                cut = True
                break
            time.sleep(0.3)
            s.settimeout(0.001)
            try:
                if s.recv(1, socket.MSG_PEEK) is not None:
                    cut = True
                    break
            except (socket.timeout, BlockingIOError):
                pass
        r = reply(s, welcome=True, timeout=5)
        check(f"slowloris (a Hello a byte every 300 ms): cut off after {time.time() - t0:.1f} s",
              cut and r is not None and r.error == E_TIMEOUT)

        s = connect()
        s.sendall(hello("h-rude"))
        w = reply(s, welcome=True)
        s.sendall(struct.pack("<I", 24) + b"\x01" * 24)
        r = reply(s, welcome=False)
        check("after the Hello, a batch that fails verification: an Ack with ATP_E_PROTOCOL",
              w is not None and w.error == 0 and r is not None and r.error == E_PROTOCOL)
        check("... then the close", closed(s))

        s = connect()
        s.sendall(hello("h-rude"))
        reply(s, welcome=True)
        s.sendall(batch([(1, "X-1", 5)], source="someone-else"))
        r = reply(s, welcome=False)
        check("an event naming another source: ATP_E_SOURCE, nothing applied",
              r is not None and r.error == E_SOURCE and r.durable == 0)

        s = connect()
        s.sendall(hello("@grpc"))
        w = reply(s, welcome=True)
        check("a Hello claiming the gRPC API's own source @grpc: ATP_E_SOURCE, then the close",
              w is not None and w.error == E_SOURCE and closed(s))

        s = connect()
        s.sendall(hello("h-big"))
        reply(s, welcome=True)
        s.sendall(batch([(i + 1, "X-1", 1) for i in range(MAX_BATCH + 1)]))
        r = reply(s, welcome=False)
        check(f"a batch of {MAX_BATCH + 1} events (limit {MAX_BATCH}): ATP_E_LIMIT", r is not None and r.error == E_LIMIT)

        s = connect()
        s.sendall(hello("h-gap"))
        reply(s, welcome=True)
        s.sendall(batch([(5, "X-1", 1), (6, "X-1", 1)]))
        r = reply(s, welcome=False)
        check("a gap: refused as (5, ATP_E_GAP) with next_seq 1, the connection stays",
              r is not None and r.error == 0 and r.refused == [(5, E_GAP)] and r.next_seq == 1)
        s.sendall(batch([(1, "X-1", 1), (2, "X-1", 1)]))
        r = reply(s, welcome=False)
        check("... and resending from next_seq is acknowledged", r is not None and r.durable == 2 and r.next_seq == 3)

        old = s
        new = connect()
        new.sendall(hello("h-gap"))
        w = reply(new, welcome=True)
        r = reply(old, welcome=False)
        check("a second connection for the source takes over: its Welcome says 2",
              w is not None and w.error == 0 and w.durable == 2)
        check("... the older gets ATP_E_SUPERSEDED and is closed",
              r is not None and r.error == E_SUPERSEDED and closed(old))
        new.close()

        # 10,000 connections at once, an honest sender streaming meanwhile.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        want = 10000 if hard >= 10100 else hard - 100
        first = honest(files[0], pass_fds=())
        socks, refused_connect = [], 0
        base_fds = len(os.listdir(f"/proc/{daemon.pid}/fd"))
        for i in range(want):
            try:
                c = socket.socket()
                c.settimeout(5)
                c.connect(("127.0.0.1", port))
                socks.append(c)
            except OSError:
                refused_connect += 1
        time.sleep(0.3)  # accepted descriptors still queued for the loop are taken or refused by then
        open_fds = len(os.listdir(f"/proc/{daemon.pid}/fd")) - base_fds
        limited = kept = 0
        waiting = {c.fileno(): c for c in socks}
        poller = select.poll()
        for fd in waiting:
            poller.register(fd, select.POLLIN)
        deadline = time.time() + 3 * FRAME_TIMEOUT_MS / 1000
        while waiting and time.time() < deadline:
            for fd, _ in poller.poll(100):
                c = waiting.pop(fd)
                poller.unregister(fd)
                r = reply(c, welcome=True, timeout=1)
                if r is not None and r.error == E_LIMIT:
                    limited += 1
                elif r is not None and r.error == E_TIMEOUT:
                    kept += 1  # taken, then timed out for want of a Hello
        kept += len(waiting)
        check(f"{want} connections at once: {limited} refused with ATP_E_LIMIT, {kept} taken and timed out for "
              f"want of a Hello, {refused_connect} not connected; {open_fds} open at the daemon after the flood "
              f"(limit {MAX_CONNECTIONS})",
              limited + kept == want - refused_connect and limited >= want / 2 and open_fds <= MAX_CONNECTIONS + 2)
        for c in socks:
            c.close()
        out, err = first.communicate(timeout=120)
        check("an honest sender streaming meanwhile finishes", first.returncode == 0)
        if first.returncode:
            print(err.decode()[-2000:])

        # A client that never reads its acks, and sends on.
        lazy = socket.socket()
        lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.connect(("127.0.0.1", port))
        lazy.sendall(hello("h-lazy"))
        lazy.setblocking(False)
        second = honest(files[1])
        seq, t0, gone, pending, turns = 1, time.time(), False, b"", 0
        while time.time() - t0 < 30 and not gone:
            turns += 1
            if turns % 500 == 0 and any("(h-lazy)" in line for line in open(log.name)):
                break  # the daemon has cut it off
            if len(pending) < 65536:
                pending += batch([(seq + i, "L-1", 1) for i in range(10)])
                seq += 10
            try:
                pending = pending[lazy.send(pending):]  # whole frames only ever leave in order
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                gone = True
        said = [line.strip() for line in open(log.name) if "(h-lazy)" in line]
        # Cut off by the ack timeout once our Acks back up, or (when its own TCP stalls it first, backing off
        # after the drops of a receive queue we stopped reading) by the idle timeout.
        check(f"a client that never reads its acks is cut off (after {(seq - 1) // 10} batches of 10, "
              f"{time.time() - t0:.1f} s): {said[-1] if said else 'nothing logged'}",
              any("not taking its acks" in line or "closing" in line for line in said))
        out, err = second.communicate(timeout=120)
        check("... while an honest sender finishes", second.returncode == 0)

        grown = rss_kb(daemon.pid) - base_rss
        check(f"the daemon's memory stays bounded: RSS grew by {grown / 1024:.0f} MB through all of it", grown < 128 * 1024)
        check("the daemon is still running", daemon.poll() is None)
        daemon.terminate()
        daemon.wait(timeout=30)
        check("and stops cleanly", daemon.returncode == 0)
        daemon = None

        # The honest senders' table: the reference plus what the probes applied (h-gap: X-1 at 2, h-lazy: L-1).
        empty = os.path.join(tmp, "empty.csv")
        open(empty, "w").write(open(files[0]).readline())
        got = os.path.join(tmp, "got.csv")
        subprocess.run([ATPCTL, "import", empty, "--data", data, "--positions", got], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ref_rows = set(open(reference).read().splitlines())
        got_rows = set(open(got).read().splitlines())
        extra = {r.split(",")[0] for r in got_rows - ref_rows}
        check(f"the honest senders' positions equal the reference's (probes' SKUs apart: {sorted(extra)})",
              ref_rows <= got_rows and extra <= {"X-1", "L-1"} and
              any(r.startswith("X-1,DC01,2,") for r in got_rows))
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        if not os.environ.get("KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
