#!/usr/bin/python3
"""The channel stream (atp.v1.Atp/Subscribe) through Python's grpcio, a
client atpd did not write.

A simulated day streamed into atpd over TCP while subscribers of three
channels (different shares, buffers, location sets and a SKU prefix)
rebuild their views from the messages alone: each ends equal to the view
computed from atpd's final positions (Scan), with every version
increasing, every update chained to the figure before it and every place
after the last. Then: a subscriber that leaves and comes back with its
token gets exactly what it missed; SIGKILL of atpd while streaming,
subscribers resuming after each restart; a subscriber that stops reading
while a burst goes by (conflated, then resynced, memory bounded); the
fan-out held back while ingest is heavy and not while it is idle; bad
requests (unknown channel, garbage and damaged tokens, a token of another
data directory, past the subscriber limit) refused while the others go
on; channels added, redefined and removed by SIGHUP.

usage: channels.py ATPD ATPCTL [KILLS [SCALE]]  (SCALE: of the days' sizes, for slow builds)
"""
import os
import signal
import shutil
import subprocess
import sys
import time

os.environ["ATPD"], os.environ["ATPCTL"] = sys.argv[1], sys.argv[2]
KILLS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
SCALE = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0

import grpc  # noqa: E402

from atp_harness import (TMP, Channel, Daemon, Subscriber, check, cleanup, failures,  # noqa: E402
                         subscribe_req)

C = grpc.StatusCode
WEB = Channel("web", share_ppm=500000, buffer=1, locations=["DC01", "DC02"])
MKT = Channel("marketplace-eu", share_ppm=800000, buffer=0)
STORES = Channel("stores", share_ppm=1000000, buffer=2, locations=["ST03", "ST04"], prefix="SKU-0001")
CHANNELS = [WEB, MKT, STORES]


def simday(name, lines, *args):
    path = os.path.join(TMP, name + ".csv")
    subprocess.run([os.environ["ATPCTL"], "simday", "--out", path, "--skus", "2000",
                    "--order-lines", str(int(lines * SCALE)), *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def settings(*extra):
    s = ["shards=4", "workers=1", "clock=events", "channel_heartbeat_ms=200", "max_positions=100000"] + list(extra)
    for c in CHANNELS:
        s += c.settings()
    return s


def clean(subs):
    ok = all(not s.errors for s in subs)
    for s in subs:
        for e in s.errors[:5]:
            print("   ", s.name, e)
    return ok


def day_and_views():
    d = Daemon("main", settings())
    subs = [Subscriber(d, c.name) for c in CHANNELS]
    day = simday("day", 20000, "--seed", "5")
    r = d.send(day)
    check(r.returncode == 0, "the day is sent and acknowledged (%s)" % r.stderr.strip()[-200:])
    for s, c in zip(subs, CHANNELS):
        check(s.wait_equal(d, c), "%s: the view built from its messages equals atpd's positions through it" % c.name)
    check(clean(subs), "every version increased, every update chained, every place after the last")
    check(all(s.counts["UPDATE"] > 100 for s in subs), "updates flowed on every channel (%s)" %
          [s.counts["UPDATE"] for s in subs])
    check(subs[0].counts["RESYNC"] == 1 and subs[0].counts["CONFLATED"] == 0,
          "a subscriber keeping up is never resynced nor conflated")

    # Leave, miss some, come back with the token: exactly what was missed, no resync.
    web = subs[0]
    web.cancel()
    token, before = web.token, dict(web.counts)
    extra = simday("extra", 2000, "--seed", "6", "--prefix", "X")
    check(d.send(extra).returncode == 0, "more events while the subscriber is away")
    web.attach(d, token)
    check(web.wait_equal(d, WEB), "back with its token: the view catches up")
    check(web.counts["RESYNC"] == before["RESYNC"], "... without a resync")
    check(clean([web]), "... and nothing sent twice or out of order")
    for s in subs:
        s.cancel()
    return d


def cli_resume(d):
    """atpctl subscribe keeps its token in a file and goes on from it in the next run."""
    tok = os.path.join(TMP, "web.token")

    def run():
        r = subprocess.run([os.environ["ATPCTL"], "subscribe", "--grpc", "127.0.0.1:%d" % d.grpc, "web",
                            "--token-file", tok, "--seconds", "3"], capture_output=True, text=True, timeout=30)
        return r.returncode, [line.split(",") for line in r.stdout.splitlines()[1:]]

    view = {}

    def apply(lines):
        for k, shard, seq, index, sku, loc, atp, prev, sku_atp, version in lines:
            if k == "RESYNC":
                view.clear()
            elif k in ("SNAPSHOT", "UPDATE", "CONFLATED"):
                if int(atp):
                    view[(sku, loc)] = int(atp)
                else:
                    view.pop((sku, loc), None)

    rc, first = run()
    apply(first)
    check(rc == 0 and first[0][0] == "RESYNC" and any(x[0] == "LIVE" for x in first),
          "atpctl subscribe: the full view first, as CSV")
    check(d.send(simday("cli", 1000, "--seed", "12", "--prefix", "C")).returncode == 0, "more events")
    rc, second = run()
    apply(second)
    check(rc == 0 and second and all(x[0] == "UPDATE" for x in second),
          "atpctl subscribe --token-file: the next run goes on from the token, updates only (%d)" % len(second))
    check(view == WEB.expected(d.scan())[0], "... and the two runs together make the channel's view")


def kills(d):
    """SIGKILL atpd while the day streams in and subscribers consume; each resumes from its token."""
    d.stop()
    shutil.rmtree(d.data)
    d = Daemon("main", settings("snapshot_mb=2"))
    subs = [Subscriber(d, c.name) for c in CHANNELS]
    day = simday("killday", 30000, "--seed", "8")
    for k in range(KILLS):
        sender = d.send_async(day)
        time.sleep(0.3 + 0.2 * (k % 3))
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        sender.kill()  # it would retry until atpd is back; it is started again next round
        sender.wait(timeout=60)
        for s in subs:
            s.thread.join(timeout=10)
        d.start()
        for s in subs:
            s.attach(d, s.token)
    r = d.send(day)
    check(r.returncode == 0, "after %d kills the day completes (%s)" % (KILLS, r.stderr.strip()[-200:]))
    for s, c in zip(subs, CHANNELS):
        check(s.wait_equal(d, c), "%s: equal after %d kills" % (c.name, KILLS))
    check(clean(subs), "across the kills: no version back, no update unchained, no place repeated")
    resyncs = sum(s.counts["RESYNC"] for s in subs)
    print("    resyncs over the kills: %d (a token older than the last snapshot resyncs)" % resyncs)
    for s in subs:
        s.cancel()
    return d


def slow_consumer():
    d = Daemon("slow", settings("channel_retention_mb=1", "channel_conflate_mb=1"))
    fast, slow = Subscriber(d, "marketplace-eu", name="fast"), Subscriber(d, "marketplace-eu", name="slow")
    time.sleep(0.5)
    slow.pause.clear()  # stops reading: its window fills, then nothing more is sent to it
    rss0 = d.rss_kb()
    # Not scaled down for slow builds: the burst must outrun 1 MiB of retention plus what grpcio's own
    # flow-control window (it grows with BDP probing) takes in for the paused reader. A burst: every source at once.
    day = simday("burst", 40000 / SCALE, "--seed", "9")
    r = d.send(day, concurrent=True)
    check(r.returncode == 0, "a burst is ingested while a subscriber does not read")
    check(fast.wait_equal(d, MKT), "the other subscriber keeps up")
    grown = d.rss_kb() - rss0
    time.sleep(2)
    slow.pause.set()
    check(slow.wait_equal(d, MKT), "the slow one, reading again, ends equal")
    check(slow.counts["RESYNC"] >= 2, "... after a resync (its place was dropped from the 1 MiB buffer): %d" %
          slow.counts["RESYNC"])
    check(clean([fast, slow]), "... with every message in order")
    print("    atpd grew %d KiB during the burst" % grown)
    check(grown < 256 * 1024, "atpd's memory stays bounded while a subscriber does not read")
    fast.cancel()
    slow.cancel()
    return d


HELD = "atpd_grpc_subscribe_held_seconds_total"  # time the fan-out was held back for heavy ingest


def heavy_ingest():
    # 1 MiB/s of fan-out while ingest is heavy: far less than a burst's stream.
    d = Daemon("heavy", settings("channel_busy_mb_s=1", "channel_conflate_mb=1"))
    check(d.send(simday("heavy0", 2000, "--seed", "13")).returncode == 0, "a first day in")
    first = Subscriber(d, "marketplace-eu", name="heavy-first")
    check(first.wait_equal(d, MKT), "a subscriber's full view while nothing comes in")
    h0 = d.metric(HELD)
    second = Subscriber(d, "marketplace-eu", name="heavy-second")
    check(second.wait_equal(d, MKT), "another one's")
    check(h0 is not None and d.metric(HELD) == h0, "... never held back: ingest is idle (%s s held)" % h0)
    r = d.send(simday("heavy1", 40000, "--seed", "14"), concurrent=True)
    check(r.returncode == 0, "a burst is ingested")
    held = d.metric(HELD) - h0
    check(held > 0, "the fan-out was held back while it came in (%.3f s)" % held)
    for s in (first, second):
        check(s.wait_equal(d, MKT), "%s: once it is in, the view catches up and ends equal" % s.name)
    check(first.counts["CONFLATED"] + second.counts["CONFLATED"] > 0 or
          first.counts["RESYNC"] + second.counts["RESYNC"] > 2,
          "... having been conflated or resynced meanwhile (%s, %s)" % (first.counts, second.counts))
    check(clean([first, second]), "... with every message in order")
    return d


def bad_requests(d, other):
    sub = d.channel.unary_stream("/atp.v1.Atp/Subscribe")

    def first(req):
        try:
            for _ in sub(req, timeout=5):
                return C.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details() or ""
        return C.OK, ""

    live = Subscriber(d, "web", name="bystander")
    code, msg = first(subscribe_req("nope"))
    check(code == C.NOT_FOUND and "nope" in msg, "an unknown channel: NOT_FOUND (%s)" % msg)
    code, msg = first(subscribe_req("web", b"garbage"))
    check(code == C.INVALID_ARGUMENT, "a garbage token: INVALID_ARGUMENT (%s)" % msg)
    time.sleep(0.5)
    tok = bytearray(live.token)
    tok[20] ^= 1
    code, msg = first(subscribe_req("web", bytes(tok)))
    check(code == C.INVALID_ARGUMENT and "check" in msg, "a token with a bit flipped: INVALID_ARGUMENT (%s)" % msg)
    o = Subscriber(other, "web", name="other")
    time.sleep(0.5)
    code, msg = first(subscribe_req("web", o.token))
    check(code == C.FAILED_PRECONDITION and "another data directory" in msg,
          "a token of another data directory: FAILED_PRECONDITION (%s)" % msg)
    o.cancel()
    code, msg = first(subscribe_req("web" * 30))
    check(code == C.INVALID_ARGUMENT, "a channel name too long: INVALID_ARGUMENT (%s)" % msg)
    code, msg = first(b"\x01\x02\x03")
    check(code == C.INVALID_ARGUMENT, "not a SubscribeRequest: INVALID_ARGUMENT (%s)" % msg)
    many = [Subscriber(d, "web", name="many") for _ in range(3)]
    time.sleep(0.5)
    code, msg = first(subscribe_req("web"))
    check(code == C.RESOURCE_EXHAUSTED, "past channel_max_subscribers: RESOURCE_EXHAUSTED (%s)" % msg)
    for m in many:
        m.cancel()
    n = live.counts["HEARTBEAT"]
    time.sleep(1)
    check(live.status is None and live.counts["HEARTBEAT"] > n, "the bystander's stream goes on (heartbeats)")
    live.cancel()


def reloads():
    conf = os.path.join(TMP, "atpd.conf")
    with open(conf, "w") as f:
        f.write("shards = 2\nchannel.web.share = 0.5\n")
    d = Daemon("reload", ["clock=events", "channel_heartbeat_ms=200", "max_positions=100000"], config=conf)
    day = simday("small", 2000, "--seed", "4")
    check(d.send(day).returncode == 0, "a small day in")
    web = Subscriber(d, "web")
    with open(conf, "a") as f:
        f.write("channel.new.locations = DC01  # added\n")
    d.kill_with(signal.SIGHUP)
    time.sleep(1)
    new = Subscriber(d, "new")
    check(new.wait_equal(d, Channel("new", locations=["DC01"])), "a channel added by SIGHUP: its full view")
    check(web.counts["RESYNC"] == 1 and web.status is None, "an unchanged channel's subscriber goes on undisturbed")
    with open(conf, "w") as f:
        f.write("shards = 2\nchannel.web.share = 0.25\n")
    d.kill_with(signal.SIGHUP)
    check(web.wait_equal(d, Channel("web", share_ppm=250000)), "a redefined channel: its subscriber resyncs to it")
    new.thread.join(timeout=10)
    details = getattr(new, "details", "") or ""
    check(new.status == C.NOT_FOUND and "removed" in details, "a removed channel's stream ends NOT_FOUND (%s)" % details)
    with open(conf, "w") as f:
        f.write("shards = 2\nchannel.web.share = 2\n")
    d.kill_with(signal.SIGHUP)
    time.sleep(0.5)
    check("channels stay as they were" in open(d.log).read(), "a bad reload is refused with a message")
    check(d.proc.poll() is None and web.status is None, "... and everything goes on")
    web.cancel()
    check(d.stop() == 0, "atpd stops cleanly")
    with open(conf, "w") as f:
        f.write("shards = 2\n")
    plain = Daemon("plain", ["max_positions=100000"], config=conf)
    code = None
    try:
        for _ in plain.channel.unary_stream("/atp.v1.Atp/Subscribe")(subscribe_req("web"), timeout=5):
            pass
    except grpc.RpcError as e:
        code = e.code()
    check(code == C.NOT_FOUND, "without channels at start there is no channel stream (NOT_FOUND)")
    with open(conf, "a") as f:
        f.write("channel.web.share = 1\n")
    plain.kill_with(signal.SIGHUP)
    time.sleep(0.5)
    check("restart it" in open(plain.log).read(), "channels added to it by SIGHUP: a message says to restart")
    check(plain.stop() == 0, "... and it goes on, then stops cleanly")


T0 = [time.time()]


def took(what):
    """Each part's seconds, so that a slow suite shows where its time goes."""
    now = time.time()
    print("    (%s: %.1f s)" % (what, now - T0[0]))
    T0[0] = now


def main():
    d = day_and_views()
    took("the day and its views")
    cli_resume(d)
    took("atpctl subscribe")
    d = kills(d)
    d.stop()
    took("kills")
    d = Daemon("limits", settings("channel_max_subscribers=4"))
    check(d.send(simday("lim", 1000, "--seed", "2")).returncode == 0, "events in")
    other = Daemon("other", settings())
    bad_requests(d, other)
    other.stop()
    d.stop()
    took("bad requests")
    slow_consumer().stop()
    took("a slow consumer")
    heavy_ingest().stop()
    took("heavy ingest")
    reloads()
    took("reloads")


try:
    main()
finally:
    cleanup()
    if not failures:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print("logs kept in", TMP)
print("channels: %d failures" % len(failures))
sys.exit(1 if failures else 0)
