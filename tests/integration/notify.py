"""systemd's notification protocol, checked against a NOTIFY_SOCKET this
test creates (no systemd needed): STATUS lines while recovering, READY=1
only once the listeners answer, WATCHDOG=1 pings at the interval asked,
RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 on SIGTERM; the same
over an abstract socket; a WATCHDOG_PID of another process: no pings.
Without NOTIFY_SOCKET nothing is sent (every other test runs atpd so).

Usage: notify.py ATPD ATPCTL"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ATPD = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="atp-notify-")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def port_answers(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def start(name, address, env_extra):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(0.2)
    log = os.path.join(TMP, name + ".log")
    env = dict(os.environ, NOTIFY_SOCKET=address if address[0] != "\0" else "@" + address[1:], **env_extra)
    proc = subprocess.Popen([ATPD, "--data", os.path.join(TMP, name), "--set", "listen=127.0.0.1:0",
                             "--set", "grpc_listen=127.0.0.1:0", "--set", "metrics_listen=127.0.0.1:0",
                             "--set", "shards=4", "--set", "workers=2", "--set", "max_positions=65536",
                             "--set", "max_lines=65536"], stderr=open(log, "w"), env=env)
    return sock, proc, log


def collect(sock, until, seconds):
    """Messages (each a dict of its lines, and when it came) until one has key `until`, or seconds pass."""
    got, end = [], time.time() + seconds
    while time.time() < end:
        try:
            data = sock.recv(4096).decode()
        except socket.timeout:
            continue
        msg = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
        msg["_at"] = time.time()
        got.append(msg)
        if until in msg:
            break
    return got


def ports(log):
    text = open(log).read()
    return [int(p) for p in re.findall(r"listening on \S+ \(port (\d+)\)", text)]


# A fresh data directory: recovery is quick, and still reported shard by shard.
sock, proc, log = start("a", os.path.join(TMP, "notify.sock"), {"WATCHDOG_USEC": "400000"})
msgs = collect(sock, "READY", 60)
ready = [m for m in msgs if "READY" in m]
check(bool(ready), "READY=1 arrives")
check(any(m.get("STATUS", "").startswith("recovering") for m in msgs[:-1]), "STATUS lines while recovering come first")
check(any(re.match(r"recovering: 4 of 4 shards", m.get("STATUS", "")) for m in msgs), "recovery's progress per shard")
p = ports(log)
check(len(p) == 3 and all(port_answers(x) for x in p), "when READY=1 came, the three listeners answer")
check(ready and "serving" in ready[0].get("STATUS", ""), "READY comes with a STATUS saying it serves")
pings = [m for m in collect(sock, "_never", 1.6) if m.get("WATCHDOG") == "1"]
check(len(pings) >= 5, "WATCHDOG=1 every half interval (%d in 1.6 s at WATCHDOG_USEC=400000)" % len(pings))
proc.send_signal(signal.SIGHUP)
msgs = collect(sock, "READY", 5)
check(any("RELOADING" in m for m in msgs) and "READY" in msgs[-1], "SIGHUP: RELOADING=1, then READY=1")
proc.send_signal(signal.SIGTERM)
msgs = collect(sock, "STOPPING", 10)
check(msgs and "STOPPING" in msgs[-1], "SIGTERM: STOPPING=1")
check(proc.wait(timeout=60) == 0, "and a clean exit")
sock.close()

# Again on the same directory, over an abstract socket; a watchdog meant for another process is not pinged.
sock, proc, log = start("a", "\0atp-notify-%d" % os.getpid(), {"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
msgs = collect(sock, "READY", 60)
check(msgs and "READY" in msgs[-1], "an abstract NOTIFY_SOCKET (@name) gets READY=1")
check(not any("WATCHDOG" in m for m in collect(sock, "_never", 0.6)), "WATCHDOG_PID of another process: no pings")
proc.send_signal(signal.SIGTERM)
check(proc.wait(timeout=60) == 0, "and a clean exit")
sock.close()

shutil.rmtree(TMP, ignore_errors=True)
print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
