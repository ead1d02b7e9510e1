#!/usr/bin/python3
"""The channel stream through NATS JetStream: atpd -> atp-bridge ->
nats-server (started here, on loopback, with a store of its own) ->
atp-mirror, the marketplace's copy of the channel.

A simulated day goes in over TCP while atpd, the broker and a bridge are
each killed with SIGKILL and started again; then the broker is made to
lose messages it had acknowledged (its store put back to an older copy,
as a crash before JetStream's periodic fsync would). Each channel's
mirror, read from the stream alone, must end equal to the view computed
from atpd's positions, with no update unchained and no version going back.
The outage must show in the bridge's log and status file.

usage: nats_bridge.py ATPD ATPCTL BRIDGE MIRROR  (exit 77: no nats-server)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

os.environ["ATPD"], os.environ["ATPCTL"] = sys.argv[1], sys.argv[2]
BRIDGE, MIRROR = sys.argv[3], sys.argv[4]
NATS_SERVER = shutil.which("nats-server")
if not NATS_SERVER:
    print("skip: no nats-server (Debian package nats-server)")
    sys.exit(77)

from atp_harness import TMP, Channel, Daemon, check, cleanup, failures  # noqa: E402

WEB = Channel("web", share_ppm=500000, buffer=1, locations=["DC01", "DC02"])
MKT = Channel("mkt", share_ppm=1000000, buffer=0)
CHANNELS = [WEB, MKT]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """nats-server -js on loopback with its store under TMP (sync as configured by default: every 2 min)."""

    def __init__(self):
        self.port = free_port()
        self.store = os.path.join(TMP, "js")
        self.log = os.path.join(TMP, "nats.log")
        self.start()

    def start(self):
        self.proc = subprocess.Popen([NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.store],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("nats-server did not start: " + open(self.log).read()[-2000:])

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def url(self):
        return "nats://127.0.0.1:%d" % self.port


class Bridge:
    def __init__(self, d, broker, channel):
        self.channel, self.d, self.broker = channel, d, broker
        self.log = os.path.join(TMP, "bridge-%s.log" % channel)
        self.status = os.path.join(TMP, "bridge-%s.json" % channel)
        self.start()

    def start(self):
        self.proc = subprocess.Popen([BRIDGE, "--channel", self.channel, "--grpc", "127.0.0.1:%d" % self.d.grpc,
                                      "--nats", self.broker.url(), "--status", self.status],
                                     stderr=open(self.log, "a"))

    def state(self):
        try:
            return json.load(open(self.status))
        except (OSError, ValueError):
            return {}

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


def mirror(broker, channel):
    out = os.path.join(TMP, "mirror-%s.csv" % channel.name)
    r = subprocess.run([MIRROR, "--channel", channel.name, "--nats", broker.url(), "--idle-ms", "1500", "--out", out],
                       capture_output=True, text=True, timeout=300)
    view = {}
    if os.path.exists(out):
        for line in open(out).read().splitlines()[1:]:
            sku, loc, atp = line.split(",")
            view[(sku, loc)] = int(atp)
    return r.returncode, r.stderr.strip(), view


def settled(d, broker, bridges, timeout=90):
    """The mirrors equal atpd's views (the bridges may still be catching up: try again until then)."""
    deadline = time.monotonic() + timeout
    while True:
        positions = d.scan()
        results = [mirror(broker, c) for c in CHANNELS]
        if all(rc == 0 and view == c.expected(positions)[0] for (rc, _, view), c in zip(results, CHANNELS)):
            return True, results
        if time.monotonic() > deadline:
            return False, results
        time.sleep(1)


def simday(name, lines, *args):
    path = os.path.join(TMP, name + ".csv")
    subprocess.run([os.environ["ATPCTL"], "simday", "--out", path, "--skus", "1500", "--order-lines", str(lines),
                    *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def main():
    settings = ["shards=4", "workers=1", "clock=events", "snapshot_mb=4", "max_positions=100000"]
    for c in CHANNELS:
        settings += c.settings()
    d = Daemon("atpd", settings)
    broker = Broker()
    bridges = [Bridge(d, broker, c.name) for c in CHANNELS]
    day = simday("day", 20000, "--seed", "3")

    # atpd killed twice while the day streams in; the bridges resubscribe from their tokens.
    for k in range(2):
        sender = d.send_async(day)
        time.sleep(0.4)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        sender.kill()
        sender.wait()
        d.start()
        for b in bridges:  # atpd's gRPC port is new: the bridges must be told (as an operator's unit would)
            b.stop(signal.SIGKILL)
            b.start()
    # The broker killed and started again mid-stream.
    sender = d.send_async(day)
    time.sleep(0.3)
    broker.stop(signal.SIGKILL)
    time.sleep(1.5)
    states = [b.state() for b in bridges]
    check(any(s.get("broker") == "down" for s in states), "the outage shows in the bridges' status (%s)" %
          [s.get("broker") for s in states])
    broker.start()
    sender.wait(timeout=300)
    # A bridge killed and started: it resumes from the stream's last message.
    bridges[0].stop(signal.SIGKILL)
    bridges[0].start()
    check(d.send(day).returncode == 0, "the day is in, acknowledged")
    ok, results = settled(d, broker, bridges)
    for (rc, summary, _), c in zip(results, CHANNELS):
        print("    " + summary)
    check(ok, "every mirror, read from JetStream alone, equals atpd's view of its channel")
    logs = open(bridges[0].log).read() + open(bridges[1].log).read()
    check("unreachable" in logs and "is back" in logs, "the bridges logged the outage and the recovery")

    # The broker loses what it had acknowledged: its store goes back to an older copy.
    broker.stop()
    saved = os.path.join(TMP, "js-saved")
    shutil.copytree(broker.store, saved)
    broker.start()
    extra = simday("extra", 3000, "--seed", "4", "--prefix", "L")
    check(d.send(extra).returncode == 0, "more events, published and acknowledged by the broker")
    time.sleep(2)
    broker.stop(signal.SIGKILL)
    shutil.rmtree(broker.store)
    shutil.copytree(saved, broker.store)
    broker.start()
    check(d.send(simday("after", 500, "--seed", "5", "--prefix", "M")).returncode == 0, "and more after the loss")
    ok, results = settled(d, broker, bridges)
    for (rc, summary, _), c in zip(results, CHANNELS):
        print("    " + summary)
    check(ok, "what the broker lost is published again from atpd: the mirrors end equal")
    logs = open(bridges[0].log).read()
    check("resuming from the stream's last message" in logs, "the bridge rewound to the stream's last message")
    for b in bridges:
        check(b.stop() == 0, "bridge %s stops cleanly" % b.channel)
    broker.stop()
    check(d.stop() == 0, "atpd stops cleanly")


try:
    main()
finally:
    cleanup()
    if not failures:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print("logs kept in", TMP)
print("nats_bridge: %d failures" % len(failures))
sys.exit(1 if failures else 0)
