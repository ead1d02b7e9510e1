#!/usr/bin/python3
"""Dead letters on the TCP event stream (on_invalid = deadletter).

A simulated day of one source (wms) goes to atpd over a raw socket (events
built here with python3-flatbuffers), with 20 events poisoned in five ways
(qty, type, sku, location, event id). Under source.wms.on_invalid =
deadletter the feed must go on: every seq acknowledged, each poison event
refused with its code and its seq consumed, each one in the store (atpctl
dlq list/show), the metric counting them, and the table equal to import of
the day with the poison rows taken out (replaced by a receipt of a SKU the
check then ignores). After a SIGKILL and a resend of the whole day from seq
1 the store holds no second copy and the table is unchanged. Redriving
corrected copies (the day's own rows; the poison events are receipts and
adjustments whose positions see nothing order-dependent afterwards) ends
with the clean day's table, once: a second redrive, also after the SIGKILL,
does nothing. A source under the default policy (stop) still stops at its
first malformed event; when the store is full a dead-letter source stops
too, with a log line; purging what was redriven empties the store.

Usage: deadletter.py ATPD ATPCTL
"""
import atexit
import csv
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import flatbuffers

from stream_wire import batch, frame, hello, reply, TYPES  # noqa: E402 (beside this file)

ATPD, ATPCTL = sys.argv[1], sys.argv[2]
CODES = {"ATP_E_TYPE": -2, "ATP_E_QTY": -3, "ATP_E_SKU": -4, "ATP_E_LOCATION": -5, "ATP_E_EVENT_ID": -11}
passed = failed = 0
tmp = tempfile.mkdtemp(prefix="atp-dlq-")


def check(what, ok):
    global passed, failed
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    if ok:
        passed += 1
    else:
        failed += 1


def stream(port, source, rows, until, timeout=60):
    """Send rows as source; read Acks until durable_seq reaches until (or next_seq stops short of it).
    Returns (welcome, durable, next_seq, refusals)."""
    s = socket.create_connection(("127.0.0.1", port))
    deadline = time.time() + timeout
    s.sendall(hello(source))
    welcome = reply(s, True, timeout)
    for i in range(0, len(rows), 200):
        s.sendall(batch(rows[i:i + 200]))
    durable, nxt, refused = welcome.durable, 0, []
    while durable < until and time.time() < deadline:
        a = reply(s, False, max(0.01, deadline - time.time()))
        if a is None:
            break
        durable, refused = a.durable, refused + a.refused
        nxt = a.next_seq or nxt
        if a.error or (refused and nxt <= refused[-1][0] and durable >= nxt - 1):
            break  # stopped: the sender must resend from next_seq
    s.close()
    return welcome, durable, nxt, refused


class Daemon:
    def __init__(self, data, settings):
        self.data, self.settings, self.log = data, settings, os.path.join(tmp, "atpd.log")

    def start(self):
        args = [ATPD, "--data", self.data, "--set", "clock=frozen", "--set", "shards=2", "--set", "first_cpu=none",
                "--set", "router_cpu=none", "--set", "listen=127.0.0.1:0", "--set", "grpc_listen=127.0.0.1:0",
                "--set", "metrics_listen=127.0.0.1:0"]
        for kv in self.settings:
            args += ["--set", kv]
        self.log = os.path.join(tmp, f"atpd-{len(os.listdir(tmp))}.log")
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(args, stderr=self.logf)
        atexit.register(lambda p=self.proc: p.poll() is None and p.kill())  # no daemon outlives the test
        for _ in range(400):
            text = open(self.log).read()
            if "atpd: serving" in text:
                port = lambda what: int(re.search(what + r" listening on .*\(port (\d+)\)", text).group(1))
                self.tcp, self.grpc, self.metrics = port("event stream"), port("grpc"), port("metrics")
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        sys.exit("atpd did not start:\n" + open(self.log).read())

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self.logf.close()

    def export(self):
        env = dict(os.environ, ATP_GRPC=f"127.0.0.1:{self.grpc}")
        out = subprocess.run([ATPCTL, "export"], env=env, capture_output=True, text=True, timeout=60).stdout
        return sorted(l for l in out.splitlines()[1:] if not l.startswith("ZZ-DLQ"))

    def metric(self, name):
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=10).read().decode()
        m = re.search("^" + name + r" (\d+)$", text, re.M)
        return int(m.group(1)) if m else None


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def record(payload):
    return struct.pack("<II", len(payload), crc32c(payload)) + payload


def store_entry(entry_id, arrival_ms, seq, event=b""):
    """One entry record of the dead-letter store's file, as atpd writes it (src/storage/deadletter.c)."""
    source = b"wms"
    return record(struct.pack("<BQQQiBBI", 1, entry_id, arrival_ms, seq, -3, len(source), 0, len(event)) + source + event)


def store_redrive(entry_id, seq, shard):
    """A redrive mark: entry_id went as seq of @dlq into shard."""
    return record(struct.pack("<BQQI", 2, entry_id, seq, shard))


def dlq(*args):
    return subprocess.run([ATPCTL, "dlq", *args], capture_output=True, text=True, timeout=60)


def main():
    day = os.path.join(tmp, "day.csv")
    subprocess.run([ATPCTL, "simday", "--out", day, "--skus", "200", "--order-lines", "2000", "--seed", "11",
                    "--one-source"], check=True, capture_output=True)
    rows = list(csv.DictReader(open(day)))
    source = rows[0]["source"]
    for r in rows:
        del r["source"]
    # 20 poison events, four of each kind, spread over the day. They are receipts and adjustments after
    # which their position sees no reservation, hold, count, transfer or safety stock: applied later
    # (redriven), they leave the table as the day would have.
    poisons = {}
    kinds = [("ATP_E_QTY", {"qty": "0", "type": "RECEIPT"}), ("ATP_E_TYPE", {"type": "77"}),
             ("ATP_E_SKU", {"sku": ""}), ("ATP_E_LOCATION", {"location": "DC\x01"}),
             ("ATP_E_EVENT_ID", {"event_id": ""})]
    order_dependent, last = {"RESERVE", "HOLD", "COUNT", "TRANSFER", "SAFETY"}, {}
    for i, r in enumerate(rows):
        if r["type"] in order_dependent:
            for loc in (r["location"], r["to_location"]):
                last[(r["sku"], loc)] = i
    candidates = [i for i, r in enumerate(rows) if i >= 1000 and r["type"] in ("RECEIPT", "ADJUST")
                  and last.get((r["sku"], r["location"]), -1) < i]
    picked = sorted({int(rows[i]["seq"]): i for i in candidates[::max(1, len(candidates) // 20)]}.items())[:20]
    assert len(picked) == 20, f"only {len(picked)} candidates"
    for k, (seq, i) in enumerate(picked):
        code, change = kinds[k % 5]
        poisons[seq] = (code, dict(rows[i], **change))
    originals = {seq: dict(rows[i], source=source) for seq, i in picked}
    sent = [poisons[int(r["seq"])][1] if int(r["seq"]) in poisons else r for r in rows]
    # The reference: the day with each poison row replaced by a receipt of a SKU the comparison leaves out.
    ref_csv = os.path.join(tmp, "reference.csv")
    with open(ref_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["event_id", "source"] + [k for k in rows[0] if k != "event_id"])
        w.writeheader()
        for r in rows:
            if int(r["seq"]) in poisons:
                r = dict(r, type="RECEIPT", sku="ZZ-DLQ", location="DC01", qty="1", ref="", to_location="",
                         reason="", ttl_ms="", partial="")
            w.writerow(dict(r, source=source))
    pos = os.path.join(tmp, "reference-positions.csv")
    subprocess.run([ATPCTL, "import", ref_csv, "--frozen-clock", "--positions", pos], check=True, capture_output=True)
    reference = sorted(l for l in open(pos).read().splitlines()[1:] if not l.startswith("ZZ-DLQ"))

    data = os.path.join(tmp, "data")
    last = int(rows[-1]["seq"])
    d = Daemon(data, [f"source.{source}.on_invalid=deadletter", "deadletter_max=20"]).start()
    welcome, durable, nxt, refused = stream(d.tcp, source, sent, last)
    check(f"the feed went on past 20 poison events: durable_seq {durable} of {last}", durable == last)
    want = sorted((seq, CODES[code]) for seq, (code, _) in poisons.items())
    check("each was refused with its code (and its seq consumed)", sorted(refused) == want)
    check("the table equals import of the day without them", d.export() == reference)
    check("atpd_deadletters_total counts 20", d.metric("atpd_deadletters_total") == 20)
    status = subprocess.run([ATPCTL, "status", "--metrics", f"127.0.0.1:{d.metrics}", "--interval-ms", "100"],
                            capture_output=True, text=True, timeout=60).stdout
    check("atpctl status shows them", "dead letters: 20 held of 20 (20 since start; 0 refused with the store full)" in status)
    listing = dlq("list", data)
    lines = listing.stdout.splitlines()[1:]
    stored = sorted((int(l.split(",")[3]), l.split(",")[5]) for l in lines)
    check("atpctl dlq list: the 20, each with its seq and reason",
          stored == sorted((seq, code) for seq, (code, _) in poisons.items()))
    qty_seq = min(seq for seq, (code, _) in poisons.items() if code == "ATP_E_QTY")
    qty_id = next(l.split(",")[0] for l in lines if int(l.split(",")[3]) == qty_seq)
    shown = dlq("show", data, qty_id).stdout
    row = poisons[qty_seq][1]
    check("atpctl dlq show: the reason and the event as a CSV row to correct",
          "ATP_E_QTY" in shown and f",{qty_seq},RECEIPT,{row['sku']},{row['location']},0," in shown)
    check("... --reason and --source filter", len(dlq("list", data, "--reason", "TYPE").stdout.splitlines()) == 5 and
          len(dlq("list", data, "--source", "nobody").stdout.splitlines()) == 1)
    remote = ["--grpc", f"127.0.0.1:{d.grpc}"]
    check("from the running atpd (Admin/DeadLetters): the same list and the same entry",
          dlq("list", *remote).stdout == listing.stdout and dlq("show", *remote, qty_id).stdout == shown and
          dlq("list", *remote, "--reason", "TYPE").stdout == dlq("list", data, "--reason", "TYPE").stdout)

    # Redrive: the corrected copies (the day's own rows), once, under @dlq; then the table is the clean day's.
    subprocess.run([ATPCTL, "import", day, "--frozen-clock", "--positions", pos], check=True, capture_output=True)
    clean = sorted(open(pos).read().splitlines()[1:])
    by_id = sorted((int(l.split(",")[0]), int(l.split(",")[3])) for l in lines)
    corrected = os.path.join(tmp, "corrected.csv")
    with open(corrected, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["event_id", "source"] + [k for k in rows[0] if k != "event_id"])
        w.writeheader()
        for _, seq in by_id:
            w.writerow(originals[seq])
    ids = [str(i) for i, _ in by_id]
    grpc = ["--grpc", f"127.0.0.1:{d.grpc}"]
    out = subprocess.run([ATPCTL, "dlq", "redrive", *grpc, *ids, "--corrected", corrected], capture_output=True,
                         text=True, timeout=60)
    check("atpctl dlq redrive --corrected: all 20 redriven",
          out.returncode == 0 and out.stdout.count(",redriven\n") == 20)
    for _ in range(100):  # the reply comes once submitted; durable within a group commit
        if d.export() == clean:
            break
        time.sleep(0.1)
    check("... and the table is the clean day's", d.export() == clean)
    out = subprocess.run([ATPCTL, "dlq", "redrive", *grpc, *ids], capture_output=True, text=True, timeout=60)
    check("a second redrive does nothing: each 'redriven before'",
          out.returncode == 0 and out.stdout.count(",redriven before\n") == 20 and d.export() == clean)
    out = subprocess.run([ATPCTL, "dlq", "redrive", *grpc, "999"], capture_output=True, text=True, timeout=60)
    check("an unknown id: 'no such entry', exit 1", out.returncode == 1 and "999,no such entry" in out.stdout)
    reference = clean

    # SIGKILL, then the whole day again from seq 1: nothing twice, and the redrives stay done.
    d.stop(signal.SIGKILL)
    d = Daemon(data, [f"source.{source}.on_invalid=deadletter", "deadletter_max=20"]).start()
    welcome, durable, nxt, refused = stream(d.tcp, source, sent, last)
    check(f"after a SIGKILL and a resend from seq 1: durable_seq {durable}", durable == last)
    check("... the store holds the 20 once", len(dlq("list", data).stdout.splitlines()) == 21)
    check("... and the table is unchanged", d.export() == reference)
    out = subprocess.run([ATPCTL, "dlq", "redrive", "--grpc", f"127.0.0.1:{d.grpc}", *ids], capture_output=True,
                         text=True, timeout=60)
    check("... and the redrives stay done", out.stdout.count(",redriven before\n") == 20 and d.export() == reference)

    # The store is full (20 of 20): the next poison event of wms stops it as under stop.
    extra = dict(rows[-1], seq=str(last + 1), qty="0", type="RECEIPT")
    welcome, durable, nxt, refused = stream(d.tcp, source, [extra], last + 1, timeout=10)
    check("with the store full a poison event stops its source (refused, seq not consumed)",
          durable == last and nxt == last + 1 and refused == [(last + 1, CODES["ATP_E_QTY"])])
    check("... with a log line saying so", "the dead-letter store is full" in open(d.log).read())
    check("... and atpd_deadletters_refused_total = 1", d.metric("atpd_deadletters_refused_total") == 1)

    # A source under the default policy stops at its first malformed event, as before.
    erp = [dict(rows[0], seq="1"), dict(rows[1], seq="2", qty="0", type="RECEIPT"), dict(rows[2], seq="3")]
    welcome, durable, nxt, refused = stream(d.tcp, "erp", erp, 3, timeout=10)
    check("a source under stop stops: durable 1, next_seq 2, nothing after it applied",
          durable == 1 and nxt == 2 and refused == [(2, CODES["ATP_E_QTY"])])
    check("... and nothing of it went to the store", len(dlq("list", data).stdout.splitlines()) == 21)

    # Purge what was redriven: the store is empty, and takes dead letters again.
    out = subprocess.run([ATPCTL, "dlq", "purge", "--grpc", f"127.0.0.1:{d.grpc}", "--redriven", "--before",
                          str(int(time.time() * 1000) + 60000)], capture_output=True, text=True, timeout=60)
    check("atpctl dlq purge --redriven: 20 purged, 0 kept", "purged 20 dead letters, 0 kept" in out.stdout)
    check("... atpctl dlq list shows none", len(dlq("list", data).stdout.splitlines()) == 1)
    welcome, durable, nxt, refused = stream(d.tcp, source, [extra], last + 1, timeout=10)
    check("... and the poison event that found it full is now a dead letter (id 21: ids are not reused)",
          durable == last + 1 and dlq("list", data).stdout.splitlines()[1].startswith("21,"))
    d.stop()

    # deadletter_retention_hours: a store holding an entry from long ago and one from now, at start.
    old = os.path.join(tmp, "old")
    os.makedirs(old)
    with open(os.path.join(old, "deadletters"), "wb") as f:
        f.write(b"ATPDLQ1\n" + store_entry(1, 1000, 5) + store_entry(2, int(time.time() * 1000), 6))
    d = Daemon(old, ["on_invalid=deadletter", "deadletter_retention_hours=1"]).start()
    purged = "1 dead letters past deadletter_retention_hours purged, 1 kept"
    for _ in range(200):  # the serving loop's first turn purges: after "serving", which start() waits for
        if purged in open(d.log).read():
            break
        time.sleep(0.05)
    listed = dlq("list", old).stdout.splitlines()[1:]
    check("deadletter_retention_hours: the entry of long ago is purged, the new one kept",
          len(listed) == 1 and listed[0].startswith("2,") and purged in open(d.log).read())
    d.stop()

    # A redrive marked but never applied (a crash between the store's fdatasync and the shard's): at start
    # atpd finds the shard's mark for @dlq short of it and holds the entry again; it can be redriven.
    lost = os.path.join(tmp, "lost")
    os.makedirs(lost)
    event = batch([dict(rows[0], seq="1", sku="SKU-LOST", location="DC01", qty="4", type="RECEIPT")])[4:]
    with open(os.path.join(lost, "deadletters"), "wb") as f:
        f.write(b"ATPDLQ1\n" + store_entry(1, int(time.time() * 1000), 1, event) + store_redrive(1, 7, 0))
    d = Daemon(lost, ["on_invalid=deadletter"]).start()
    out = subprocess.run([ATPCTL, "dlq", "redrive", "--grpc", f"127.0.0.1:{d.grpc}", "1"], capture_output=True,
                         text=True, timeout=60)
    for _ in range(100):
        if any(l.startswith("SKU-LOST,DC01,4,") for l in d.export()):
            break
        time.sleep(0.1)
    check("a redrive that never became durable is held again at start, and redrives once",
          "never became durable; held again" in open(d.log).read() and "1,redriven\n" in out.stdout and
          any(l.startswith("SKU-LOST,DC01,4,") for l in d.export()))
    d.stop()
    print(f"{passed} passed, {failed} failed")
    if not os.environ.get("KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
