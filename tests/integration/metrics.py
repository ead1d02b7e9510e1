"""The metrics listener: Prometheus scrapes a real atpd during a simulated
day; every scrape passes `promtool check metrics`, counters never go back,
and at the end they equal what `atpctl import` says of the same day
(events by type, duplicates, reservations, floor exceptions, positions,
each source's seq), the event stream's and the gRPC API's own counts, and
the channel's. Then hostile scrapers: a request head too big, more
connections than allowed, one that never sends its request, other paths
and methods; atpd answers each and goes on serving.

Usage: metrics.py ATPD ATPCTL ORDER_LINES"""
import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

os.environ["ATPD"], os.environ["ATPCTL"] = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atp_harness import TMP, Daemon, check, failures  # noqa: E402

ATPCTL = sys.argv[2]
ORDER_LINES = sys.argv[3]
PROMTOOL = shutil.which("promtool")


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def parse(text):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, "not a sample line: " + line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def promtool_ok(text):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        print(r.stdout + r.stderr)
    return r.returncode == 0


def raw(port, payload, wait=5.0):
    """Send payload, return what comes back until the server closes (or wait passes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        if payload:
            s.sendall(payload)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    except socket.timeout:
        return data + b"<timeout>"
    except ConnectionResetError:
        return data + b"<reset>"
    finally:
        s.close()


check(PROMTOOL is not None, "promtool is installed (Debian's prometheus package; tools/setup installs it)")

# The day (one source: one connection applies it in the order import does) and what atpctl import says of it.
day = os.path.join(TMP, "day.csv")
subprocess.run([ATPCTL, "simday", "--one-source", "--order-lines", ORDER_LINES, "--out", day], check=True, capture_output=True, timeout=120)
rows = sum(1 for _ in open(day)) - 1
last_at = max(int(r["occurred_at"]) for r in csv.DictReader(open(day)))
ref = subprocess.run([ATPCTL, "import", day], check=True, capture_output=True, text=True, timeout=300).stdout
print(ref)
by_type = {t.lower(): int(n) for t, n in re.findall(r"([A-Z]+) (\d+)", re.search(r"by type: (.*)", ref).group(1))}
dups = int(re.search(r"(\d+) duplicates acknowledged", ref).group(1))
full, partial, unfilled, retried = map(int, re.search(
    r"(\d+) lines confirmed whole, (\d+) partially, (\d+) unfilled, (\d+) retries", ref).groups())
negative, short = map(int, re.search(r"(\d+) events drove on_hand negative, (\d+) left reservations short", ref).groups())
positions = int(re.search(r"ATP: (\d+) positions", ref).group(1))
seqs = {s: int(q) for s, q in re.findall(r"source (\S+): applied through seq (\d+)", ref)}

d = Daemon("metrics", ["clock=events", "channel.web.locations=all"])
check(d.metrics is not None, "atpd says where the metrics listener is")
status, ctype, text = scrape(d.metrics)
check(status == 200 and ctype.startswith("text/plain; version=0.0.4"), "GET /metrics: 200, text exposition 0.0.4")
check(promtool_ok(text), "an idle atpd's exposition passes promtool check metrics")

# Scraped while the day streams in: valid every time, counters never go back.
sender = d.send_async(day)
previous, scrapes, went_back, invalid = {}, 0, [], 0
deadline = time.time() + 300
while sender.poll() is None and time.time() < deadline:
    _, _, text = scrape(d.metrics)
    scrapes += 1
    if scrapes <= 3 and not promtool_ok(text):
        invalid += 1
    now = parse(text)
    for key, v in now.items():
        if (key[0].endswith("_total") or key[0].endswith("_count")) and key in previous and v < previous[key]:
            went_back.append(key)
    previous = now
    time.sleep(0.1)
check(sender.wait(timeout=max(1, deadline - time.time())) == 0, "the day is sent and acknowledged")
check(scrapes >= 1 and invalid == 0, "%d scrapes during the day, the first ones promtool-checked" % scrapes)
check(not went_back, "no counter went back between scrapes (%s)" % went_back[:3])

# Reads and reservations through gRPC, so that its counters have something to say.
grpc = "127.0.0.1:%d" % d.grpc
sku = re.search(r"^\d+,\S*?,\d+,RECEIPT,([^,]+),([^,]+),", open(day).read(), re.M)
for _ in range(3):
    subprocess.run([ATPCTL, "atp", "--grpc", grpc, sku.group(1)], check=True, capture_output=True, timeout=30)
subprocess.run([ATPCTL, "reserve", "--grpc", grpc, "metrics-test-1", sku.group(1), sku.group(2), "1"],
               capture_output=True, timeout=30)
subprocess.run([ATPCTL, "atp", "--grpc", grpc, "NO-SUCH-SKU"], capture_output=True, timeout=30)

# The day's figures, as the engine's own summary gives them.
time.sleep(0.5)  # a group commit publishes the shards' figures
_, _, text = scrape(d.metrics)
check(promtool_ok(text), "after the day: the exposition passes promtool check metrics")
m = parse(text)
for t, n in by_type.items():
    want = n + (1 if t == "reserve" else 0)  # and the reservation made above
    check(value(m, "atpd_events_applied_total", type=t) == want,
          "applied %s: %s, import says %d" % (t, value(m, "atpd_events_applied_total", type=t), want))
check(value(m, "atpd_events_duplicate_total") == dups, "duplicates: %s = %d" % (value(m, "atpd_events_duplicate_total"), dups))
ours = value(m, "atpd_reserve_lines_total", result="full") - full  # 1 if the reservation above was confirmed
check(value(m, "atpd_reserve_lines_total", result="partial") == partial and
      value(m, "atpd_reserve_lines_total", result="replayed") == retried and
      value(m, "atpd_reserve_lines_total", result="unfilled") + ours == unfilled + 1 and ours in (0, 1),
      "reservation lines by result equal import's (%d whole, %d partial, %d unfilled, %d retried), and ours"
      % (full, partial, unfilled, retried))
promised, opened = map(int, re.search(r"promised against inbound supply: (\d+) lines, (\d+) opened", ref).groups())
check(promised > 0 and value(m, "atpd_promises_total", event="made") == promised and
      value(m, "atpd_promises_total", event="opened") == opened,
      "promises against purchase orders: %d made, %d opened, as import says" % (promised, opened))
check(value(m, "atpd_negative_on_hand_events_total") == negative and value(m, "atpd_short_reservation_events_total") == short,
      "floor exceptions: %d negative on_hand, %d short" % (negative, short))
check(value(m, "atpd_positions") == positions, "positions: %s = %d" % (value(m, "atpd_positions"), positions))
for src, q in seqs.items():
    check(value(m, "atpd_source_durable_seq", source=src) == q, "source %s durable through %d" % (src, q))
    # clock = events: the engine's time is the latest occurred_at it has seen, the day's last one by then.
    seen = value(m, "atpd_source_last_event_seconds", source=src)
    check(seen == last_at / 1000, "source %s: its last event at the engine's time %s s (the day ends at %d ms)"
          % (src, seen, last_at))
check(value(m, "atpd_stream_events_total") == rows, "the event stream received the day's %d rows" % rows)
commits = value(m, "atpd_fsync_seconds_count")
check(commits and commits == value(m, "atpd_group_commit_events_count") and
      value(m, 'atpd_fsync_seconds_bucket', le="+Inf") == commits,
      "%d group commits, each in the fsync and group size histograms" % (commits or 0))
check(value(m, "atpd_group_commit_events_sum") == value(m, "atpd_engine_events_total"),
      "the group size histogram's sum is the events completed")
check(value(m, "atpd_wal_records_total") > 0 and value(m, "atpd_wal_bytes_total") > 0 and value(m, "atpd_wal_segments") >= 1,
      "WAL records, bytes and segments")
check(value(m, "atpd_grpc_replies_total", method="GetAtp", code="0") == 3, "3 GetAtp answered OK")
check(value(m, "atpd_grpc_replies_total", method="GetAtp", code="5") == 1, "1 GetAtp answered NOT_FOUND")
check(value(m, "atpd_grpc_replies_total", method="Reserve", code="0") == 1, "1 Reserve answered OK")
check(value(m, "atpd_grpc_latency_seconds_count", method="GetAtp") == 4 and
      value(m, "atpd_grpc_latency_seconds_bucket", method="GetAtp", le="+Inf") == 4,
      "GetAtp's latency histogram counts its 4 calls")
check(value(m, "atpd_channel_written_bytes_total", channel="web") > 0 and
      value(m, "atpd_channel_subscribers", channel="web") == 0, "channel web: messages written, no subscriber")
check(value(m, "atpd_reservation_lines_open") == ours, "open reservation lines: ours only (%d)" % ours)

# atpctl status reads the same exposition: one screen, and JSON.
st = subprocess.run([ATPCTL, "status", "--metrics", "127.0.0.1:%d" % d.metrics, "--interval-ms", "200"],
                    capture_output=True, text=True, timeout=30)
print(st.stdout + st.stderr)
check(st.returncode == 0 and ("%d since start" % value(m, "atpd_engine_events_total")) in st.stdout and
      "positions %d of" % positions in st.stdout and
      all(re.search(r"%s %d \([^)]+ ago\)" % (re.escape(src), q), st.stdout) for src, q in seqs.items()) and
      "web: 0 subscribers" in st.stdout,
      "atpctl status: events, positions, every source's seq and last event, the channel")
js = subprocess.run([ATPCTL, "status", "--metrics", "127.0.0.1:%d" % d.metrics, "--json", "--interval-ms", "200"],
                    capture_output=True, text=True, timeout=30)
try:
    j = json.loads(js.stdout)
except ValueError:
    j = {}
src = next(iter(seqs))
check(j.get("positions") == positions and j.get("sources", {}).get(src, {}).get("durable_seq") == seqs[src] and
      j["sources"][src].get("last_event_seconds", 0) > 0 and
      j.get("events_per_second") == 0 and "web" in j.get("channels", {}),
      "atpctl status --json: the same figures, an idle rate of 0")
bad = subprocess.run([ATPCTL, "status", "--metrics", "127.0.0.1:1"], capture_output=True, text=True, timeout=30)
check(bad.returncode == 1 and "cannot reach" in bad.stderr, "atpctl status with nothing listening: exit 1, says so")

# Hostile scrapers.
big = raw(d.metrics, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n")
check(big.startswith(b"HTTP/1.1 431"), "a request head over 4 KiB: 431")
check(raw(d.metrics, b"GET /other HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404"), "another path: 404")
check(raw(d.metrics, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").startswith(b"HTTP/1.1 405"), "POST: 405")
held = [socket.create_connection(("127.0.0.1", d.metrics), timeout=10) for _ in range(8)]
extra = raw(d.metrics, b"GET /metrics HTTP/1.1\r\n\r\n")
check(extra in (b"", b"<reset>"), "a ninth scraper while eight are connected: closed at once, nothing sent")
t0 = time.time()
held[0].settimeout(15)
gone = held[0].recv(10) == b""
check(gone and time.time() - t0 < 12, "a scraper that never sends its request is closed (after %.1f s)" % (time.time() - t0))
for s in held:
    s.close()
time.sleep(0.3)
status, _, text = scrape(d.metrics)
check(status == 200 and promtool_ok(text), "after all that, a scrape still works")
check(subprocess.run([ATPCTL, "atp", "--grpc", grpc, sku.group(1)], capture_output=True, timeout=30).returncode == 0,
      "and the gRPC API still answers")
check(value(parse(text), "atpd_metrics_scrapes_total") >= scrapes + 2, "scrapes are counted")
check(d.stop() == 0, "atpd stops cleanly")
print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
