#!/usr/bin/python3
"""The long crash campaign: everything at once while atpd is SIGKILLed.

Each round: a simulated day of several sources (its own, prefix R<k>-)
streams in over TCP (atpctl send), two gRPC clients reserve and release on SKUs of their own
(GSKU-*, stock sent once by a source of its own), two channel subscribers
consume from their tokens; after a random 0.05-0.6 s atpd is SIGKILLed and
started again (the sender with it: its day is sent whole, resuming, at the end).
Then TRICKLE rounds of the reservers alone, 5 ms between calls, so that the
router commits them in the worker's place (router_commit_gap_ms; its
counter must have moved before the kill). After every restart:
  - every reservation whose answer was lost is retried under its id until
    answered (the same id never applies twice); a sample of the confirmed
    ones, retried, answers its first result as a duplicate: still there;
  - no GSKU position is oversold (ATP >= 0).
At the end, every day sent whole and every answer known:
  - each day's positions equal `atpctl import` of its file: no
    acknowledged event lost, none applied twice;
  - each GSKU position's ATP is its stock minus the quantities confirmed to
    reservations not released, exactly;
  - each subscriber's view, built from its messages alone, equals atpd's
    positions through its channel, versions increasing across every kill.

usage: campaign.py ATPD ATPCTL [KILLS [ORDER_LINES of each day]]
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time

os.environ["ATPD"], os.environ["ATPCTL"] = sys.argv[1], sys.argv[2]
KILLS = int(sys.argv[3]) if len(sys.argv) > 3 else 10
LINES = int(sys.argv[4]) if len(sys.argv) > 4 else 6000
TRICKLE = 3  # rounds of reservers alone, a pause between calls: the router commits them

import flatbuffers  # noqa: E402
import grpc  # noqa: E402

from atp_harness import TMP, Channel, Daemon, Subscriber, check, cleanup, failures  # noqa: E402
from atp.v1 import PositionAtp, ReleaseReply, ReserveReply, ScanRequest  # noqa: E402
from reserve_wire import release_req, reserve_req  # noqa: E402

GSKUS, STOCK = 40, 300
CHANNELS = [Channel("web", share_ppm=500000, buffer=1, locations=["DC01", "DC02"]), Channel("all")]
rng = random.Random(int(os.environ.get("CAMPAIGN_SEED", "29")))


def simday(k):
    """Round k's day: sources and SKUs of its own (prefix R<k>-), its table from import (the clock frozen)."""
    day = os.path.join(TMP, "day%d.csv" % k)
    subprocess.run([os.environ["ATPCTL"], "simday", "--out", day, "--skus", "300", "--order-lines", str(LINES),
                    "--seed", str(21 + k), "--prefix", "R%d-" % k], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ref = day + ".ref"
    subprocess.run([os.environ["ATPCTL"], "import", day, "--frozen-clock", "--positions", ref], check=True,
                   stdout=subprocess.DEVNULL)
    want = {}
    for line in open(ref).read().splitlines()[1:]:
        f = line.split(",")
        want[(f[0], f[1])] = int(f[6])
    return day, want


def stock_file():
    stock = os.path.join(TMP, "stock.csv")
    with open(stock, "w") as f:
        f.write("event_id,source,seq,type,sku,location,qty,ref,to_location,reason,occurred_at,ttl_ms,partial\n")
        for i in range(GSKUS):
            f.write("%d,stock,%d,RECEIPT,GSKU-%03d,DC01,%d,PO-G%d,,,0,,\n" % (i + 1, i + 1, i, STOCK, i))
    return stock


def scan_req(after, limit):
    b = flatbuffers.Builder(64)
    a = b.CreateString(after)
    ScanRequest.Start(b)
    ScanRequest.AddAfterSku(b, a)
    ScanRequest.AddLimit(b, limit)
    b.Finish(ScanRequest.End(b))
    return bytes(b.Output())


class Reserver:
    """Reserves and releases on the GSKUs in a thread; every id's outcome is known in the end."""

    def __init__(self, name):
        self.name, self.n, self.pause = name, 0, 0
        self.lines = {}        # id -> (sku, qty asked)
        self.confirmed = {}    # id -> qty confirmed (its first answer)
        self.released = set()
        self.unknown, self.unknown_release = set(), set()
        self.errors = []

    def reserve(self, d, rid, timeout=5):
        sku, qty = self.lines[rid]
        r = ReserveReply.ReserveReply.GetRootAs(
            d.channel.unary_unary("/atp.v1.Atp/Reserve")(reserve_req(rid, [(sku, "DC01", qty)]), timeout=timeout))
        return r.Lines(0).Confirmed(), r.Duplicate()

    def release(self, d, rid, timeout=5):
        r = ReleaseReply.ReleaseReply.GetRootAs(
            d.channel.unary_unary("/atp.v1.Atp/Release")(release_req(rid), timeout=timeout))
        return r.Found()

    def run(self, d, stop):
        while not stop.wait(self.pause):
            if self.confirmed and rng.random() < 0.2:
                rid = rng.choice(list(self.confirmed))
                if rid in self.released:
                    continue
                try:
                    self.release(d, rid)
                    self.released.add(rid)
                except grpc.RpcError:
                    self.unknown_release.add(rid)
                    return
                continue
            self.n += 1
            rid = "%s-%d" % (self.name, self.n)
            self.lines[rid] = ("GSKU-%03d" % rng.randrange(GSKUS), rng.randint(1, 5))
            try:
                self.confirmed[rid] = self.reserve(d, rid)[0]
            except grpc.RpcError:
                self.unknown.add(rid)  # answered or not: asked again under the same id after the restart
                return

    def settle(self, d):
        """Every outcome the kill hid, asked again under the same id; a sample of the known ones checked."""
        for rid in sorted(self.unknown):
            self.confirmed[rid] = self.reserve(d, rid, timeout=30)[0]
        self.unknown.clear()
        for rid in sorted(self.unknown_release):
            self.release(d, rid, timeout=30)
            self.released.add(rid)
        self.unknown_release.clear()
        held = [r for r in self.confirmed if r not in self.released and self.confirmed[r] > 0]
        for rid in rng.sample(held, min(10, len(held))):
            got = self.reserve(d, rid, timeout=30)
            if got != (self.confirmed[rid], True):
                self.errors.append("%s: confirmed %d, retried after a restart: %s" % (rid, self.confirmed[rid], got))

    def held(self):
        out = {}
        for rid, qty in self.confirmed.items():
            if rid not in self.released:
                sku = self.lines[rid][0]
                out[sku] = out.get(sku, 0) + qty
        return out


def gsku_atp(d):
    """The GSKU positions only (they sort before the days' R<k>- SKUs): one page of Scan, not the whole table."""
    out = {}
    for m in d.channel.unary_stream("/atp.v1.Atp/Scan")(scan_req("GSKU-", GSKUS), timeout=60):
        p = PositionAtp.PositionAtp.GetRootAs(m)
        out[p.Sku().decode()] = p.Atp()
    return out


def kill_round(d, reservers, subs, seconds, at_kill, after_kill=None):
    """The reservers run for seconds; at_kill() is read, atpd SIGKILLed, after_kill() run, atpd started again, the
    subscribers reattached and the reservers settled. Returns at_kill()'s value and the GSKUs oversold (ATP < 0)."""
    stop = threading.Event()
    threads = [threading.Thread(target=r.run, args=(d, stop), daemon=True) for r in reservers]
    for t in threads:
        t.start()
    time.sleep(seconds)
    seen = at_kill()
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    if after_kill:
        after_kill()
    for sub in subs:
        sub.thread.join(timeout=10)
    d.start()
    for sub in subs:
        sub.attach(d, sub.token)
    for r in reservers:
        r.settle(d)
    return seen, [(g, a) for g, a in gsku_atp(d).items() if a < 0]


def main():
    s = ["shards=4", "workers=1", "clock=frozen", "snapshot_mb=2", "channel_heartbeat_ms=200",
         # Every round's day brings ~300 SKUs x 4 locations and ~6,000 reservation lines, and with the clock
         # frozen no closed line is ever forgotten: room for all of them (a full table would refuse RESERVEs).
         "max_positions=%d" % max(131072, 4096 * KILLS), "max_lines=%d" % max(262144, (LINES + 2048) * KILLS)]
    for c in CHANNELS:
        s += c.settings()
    d = Daemon("campaign", s)
    check(d.send(stock_file()).returncode == 0, "the GSKU stock is in")
    subs = [Subscriber(d, c.name) for c in CHANNELS]
    reservers = [Reserver("A"), Reserver("B")]
    days, want, oversold, midstream, t0 = [], {}, [], 0, time.monotonic()
    for k in range(KILLS):
        day, w = simday(k)
        days.append(day)
        want.update(w)
        sender = d.send_async(day)
        # after the kill the sender stops (it would retry until atpd is back): its day is sent whole at the end
        streaming, negative = kill_round(d, reservers, subs, rng.uniform(0.05, 0.6), lambda: sender.poll() is None,
                                         lambda: (sender.kill(), sender.wait(timeout=60)))
        midstream += streaming
        oversold += ["round %d: %s at %d" % (k, g, a) for g, a in negative]
    lent = []
    for r in reservers:
        r.pause = 0.005
    for k in range(TRICKLE):
        commits, negative = kill_round(d, reservers, subs, rng.uniform(0.3, 0.8),
                                       lambda: d.metric("atpd_router_commits_total") or 0)
        lent.append(commits)
        oversold += ["trickle %d: %s at %d" % (k, g, a) for g, a in negative]
    check(all(n > 0 for n in lent), "each trickle round was committed by the router, in part at least, before its "
          "kill (atpd_router_commits_total: %s)" % lent)
    print("    %d kills in %.0f s, %d of them while a day streamed in; %d reservations (%d confirmed, %d released)" % (
        KILLS, time.monotonic() - t0, midstream, sum(r.n for r in reservers),
        sum(1 for r in reservers for q in r.confirmed.values() if q), sum(len(r.released) for r in reservers)))
    errors = [e for r in reservers for e in r.errors]
    check(not errors, "after each of %d restarts every reservation sampled answers its first result%s" % (
        KILLS, (": " + "; ".join(errors[:3])) if errors else ""))
    check(not oversold, "no GSKU position oversold after any restart%s" % (": %s" % oversold[:3] if oversold else ""))
    sent = [d.send(day) for day in days]
    check(all(r.returncode == 0 for r in sent), "after %d kills every round's day completes (%s)" % (
        KILLS, "; ".join(r.stderr.strip()[-200:] for r in sent if r.returncode)))
    got = {k: v for k, v in d.scan().items() if not k[0].startswith("GSKU-")}
    diff = [k for k in set(got) | set(want) if got.get(k, 0) != want.get(k, 0)]
    check(not diff, "every day's positions equal import of its file: nothing lost, nothing twice (%d differ%s)" % (
        len(diff), ", e.g. %s" % [(k, want.get(k), got.get(k)) for k in diff[:3]] if diff else ""))
    held = {}
    for res in reservers:
        for sku, q in res.held().items():
            held[sku] = held.get(sku, 0) + q
    atp = gsku_atp(d)
    bad = [(g, atp.get(g), STOCK - held.get(g, 0)) for g in ("GSKU-%03d" % i for i in range(GSKUS))
           if atp.get(g) != STOCK - held.get(g, 0)]
    check(not bad, "each GSKU's ATP is its stock minus what open reservations confirmed (%d differ%s)" % (
        len(bad), ", e.g. %s" % bad[:3] if bad else ""))
    for sub, c in zip(subs, CHANNELS):
        check(sub.wait_equal(d, c), "%s: the subscriber's view equals atpd's positions through it" % c.name)
    errs = [e for sub in subs for e in sub.errors]
    check(not errs, "across the kills no version went back, no update came unchained%s" % (
        ": %s" % errs[:3] if errs else ""))
    for sub in subs:
        sub.cancel()
    d.stop()


try:
    main()
finally:
    cleanup()
print("campaign: %d kills, %s" % (KILLS, "FAILED: %d checks" % len(failures) if failures else "all checks passed"))
sys.exit(1 if failures else 0)
