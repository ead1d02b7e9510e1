"""What the channel stream's integration tests share: the schemas' Python
classes (from flatc), atpd started and stopped on loopback ports, a gRPC
Subscribe consumer that rebuilds a channel's view from its messages alone
and checks every message as it goes, and the views expected from atpd's
own positions (Scan)."""
import atexit
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import flatbuffers
import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TMP = tempfile.mkdtemp(prefix="atp-harness-")
subprocess.run(["flatc", "--python", "-o", TMP + "/py", ROOT + "/fbs/atp.fbs", ROOT + "/fbs/delta.fbs"], check=True)
sys.path.insert(0, TMP + "/py")
from atp.v1 import Delta, DeltaKind, PositionAtp, ScanRequest, SubscribeRequest  # noqa: E402

KIND = {v: k for k, v in vars(DeltaKind.DeltaKind).items() if not k.startswith("_")}
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def subscribe_req(channel, token=None):
    b = flatbuffers.Builder(128)
    t = b.CreateByteVector(bytes(token)) if token else None
    c = b.CreateString(channel)
    SubscribeRequest.Start(b)
    SubscribeRequest.AddChannel(b, c)
    if t is not None:
        SubscribeRequest.AddResumeToken(b, t)
    b.Finish(SubscribeRequest.End(b))
    return bytes(b.Output())


def scan_req():
    b = flatbuffers.Builder(32)
    ScanRequest.Start(b)
    b.Finish(ScanRequest.End(b))
    return bytes(b.Output())


class Daemon:
    """atpd on a data directory under TMP, its ports read from its log."""

    def __init__(self, name, settings=(), config=None):
        self.data = os.path.join(TMP, name)
        self.settings = list(settings)
        self.config = config
        self.log = os.path.join(TMP, name + ".log")
        self.start()

    def start(self):
        args = [os.environ["ATPD"], "--data", self.data]
        if self.config:
            args += ["--config", self.config]
        # Tables sized to the tests' days: a sanitizer build touches every page of them at start.
        for s in ["listen=127.0.0.1:0", "grpc_listen=127.0.0.1:0", "metrics_listen=127.0.0.1:0", "max_positions=131072", "max_lines=262144"] + \
                self.settings:
            args += ["--set", s]
        start = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        self.proc = subprocess.Popen(args, stderr=open(self.log, "a"))
        for _ in range(1200):  # 60 s: a sanitizer build faults its tables in slowly
            text = open(self.log).read()[start:]
            m = re.search(r"event stream listening on \S+ \(port (\d+)\)", text)
            g = re.search(r"grpc listening on \S+ \(port (\d+)\)", text)
            if m and g and "atpd: serving" in text:
                self.tcp, self.grpc = int(m.group(1)), int(g.group(1))
                x = re.search(r"metrics listening on \S+ \(port (\d+)\)", text)
                self.metrics = int(x.group(1)) if x else None
                self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.grpc)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit("atpd did not start: " + open(self.log).read()[-3000:])

    def send(self, path, timeout=300, concurrent=False):
        """atpctl send; concurrent: every source at once (no order across them, no round trip per switch) where
        the test checks against Scan rather than against import of the file."""
        return subprocess.run([os.environ["ATPCTL"], "send", "--tcp", "127.0.0.1:%d" % self.tcp, path] +
                              (["--concurrent"] if concurrent else []),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=timeout)

    def send_async(self, path):
        return subprocess.Popen([os.environ["ATPCTL"], "send", "--tcp", "127.0.0.1:%d" % self.tcp, path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def scan(self):
        out = {}
        for m in self.channel.unary_stream("/atp.v1.Atp/Scan")(scan_req(), timeout=60):
            p = PositionAtp.PositionAtp.GetRootAs(m)
            out[(p.Sku().decode(), p.Location().decode())] = p.Atp()
        return out

    def metric(self, name):
        """A sample without labels from atpd's exposition, or None when it has none."""
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics, timeout=10).read().decode()
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else None

    def rss_kb(self):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def kill_with(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        self.channel.close()
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


class Channel:
    """A channel's definition, as atpd's settings give it."""

    def __init__(self, name, share_ppm=1000000, buffer=0, locations=None, prefix=""):
        self.name, self.share_ppm, self.buffer, self.locations, self.prefix = \
            name, share_ppm, buffer, locations, prefix

    def settings(self):
        s = ["channel.%s.share=%d.%06d" % (self.name, self.share_ppm // 1000000, self.share_ppm % 1000000),
             "channel.%s.buffer=%d" % (self.name, self.buffer),
             "channel.%s.locations=%s" % (self.name, ",".join(self.locations) if self.locations else "all")]
        if self.prefix:
            s.append("channel.%s.sku_prefix=%s" % (self.name, self.prefix))
        return s

    def sees(self, sku, loc):
        return sku.startswith(self.prefix) and (not self.locations or loc in self.locations)

    def figure(self, atp):
        return max(0, atp * self.share_ppm // 1000000 - self.buffer)

    def expected(self, positions):
        """(per position, per SKU) figures from atpd's positions; zeros left out."""
        pos, sku = {}, {}
        for (s, l), atp in positions.items():
            if self.sees(s, l):
                f = self.figure(atp)
                if f:
                    pos[(s, l)] = f
                    sku[s] = sku.get(s, 0) + f
        return pos, sku


class Subscriber:
    """Consumes a channel in a thread, keeps its view and its last token, and checks every message."""

    def __init__(self, daemon, channel, token=None, name=None):
        self.name = name or channel
        self.channel_name = channel
        self.token = token
        self.view, self.sku_view, self.version = {}, {}, {}
        self.places = {}
        self.counts = {k: 0 for k in KIND.values()}
        self.errors = []
        self.live = False
        self.status = None
        self.pause = threading.Event()
        self.pause.set()
        self.attach(daemon, token)

    def attach(self, daemon, token=None):
        self.status = None
        self.call = daemon.channel.unary_stream("/atp.v1.Atp/Subscribe")(subscribe_req(self.channel_name, token))
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def error(self, what):
        if len(self.errors) < 20:
            self.errors.append(what)

    def take(self, m):
        d = Delta.Delta.GetRootAs(m)
        kind = KIND[d.Kind()]
        self.counts[kind] += 1
        o = d._tab.Offset(26)  # the token, field 11: read as one slice, not byte by byte
        at = d._tab.Vector(o)
        tok = bytes(d._tab.Bytes[at:at + d._tab.VectorLen(o)])
        if kind == "RESYNC":
            self.view, self.sku_view, self.version, self.live = {}, {}, {}, False
        elif kind == "LIVE":
            self.live = True
        elif kind in ("UPDATE", "CONFLATED", "SNAPSHOT"):
            key = (d.Sku().decode(), d.Location().decode())
            if d.Version() <= self.version.get(key, 0):
                self.error("%s %s: version %d after %d" % (kind, key, d.Version(), self.version.get(key, 0)))
            if kind == "UPDATE" and d.PreviousAtp() != self.view.get(key, 0):
                self.error("%s: previous %d, held %d" % (key, d.PreviousAtp(), self.view.get(key, 0)))
            if kind != "SNAPSHOT":
                place = (d.Seq(), d.Index())
                if place <= self.places.get(d.Shard(), (0, -1)):
                    self.error("shard %d: place %s after %s" % (d.Shard(), place, self.places.get(d.Shard())))
                self.places[d.Shard()] = place
            self.version[key] = d.Version()
            if d.Atp():
                self.view[key] = d.Atp()
            else:
                self.view.pop(key, None)
            if d.SkuAtp():
                self.sku_view[key[0]] = d.SkuAtp()
            else:
                self.sku_view.pop(key[0], None)
        self.token = tok

    def run(self):
        try:
            for m in self.call:
                self.pause.wait()
                self.take(m)
            self.status = grpc.StatusCode.OK
        except grpc.RpcError as e:
            self.status = e.code()
            self.details = e.details()
        except Exception as e:  # a bug of the test: make it visible
            self.error("consumer crashed: %r" % e)
            self.status = "crashed"

    def cancel(self):
        self.call.cancel()
        self.thread.join(timeout=10)

    def equals(self, positions, channel):
        pos, sku = channel.expected(positions)
        return self.live and self.view == pos and self.sku_view == sku

    def wait_equal(self, daemon, channel, timeout=60):
        """Until the view equals atpd's positions through the channel (they keep moving only while events arrive)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.equals(daemon.scan(), channel):
                return True
            time.sleep(0.2)
        pos, sku = channel.expected(daemon.scan())
        diff = [k for k in set(pos) | set(self.view) if pos.get(k) != self.view.get(k)]
        print("  %s: live %s, %d positions differ, e.g. %s" % (
            self.name, self.live, len(diff), [(k, pos.get(k), self.view.get(k)) for k in diff[:3]]))
        return False


def cleanup():
    for p in subprocess.run(["pgrep", "-f", TMP], capture_output=True, text=True).stdout.split():
        try:
            os.kill(int(p), signal.SIGKILL)
        except ProcessLookupError:
            pass


# Whatever way a test script ends (a failed check that raised included), no process of its leaks: an orphaned
# atpd would hold meson's output pipe and the suite would wait for it.
atexit.register(cleanup)
