#!/usr/bin/env python3
"""ATP over time through real processes: purchase orders sent as SUPPLY
events over the event stream, GetAtpProfile and Reserve with a need-by day
through grpcio, a receipt opening what was promised, a cancelled PO
withdrawing it; then SIGKILL and a restart (the WAL's dated records), and a
snapshot and a restart: every answer the same.

    inbound.py ATPD ATPCTL"""
import datetime
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["ATPD"], os.environ["ATPCTL"] = sys.argv[1], sys.argv[2]
from atp_harness import TMP, Daemon, check, failures  # noqa: E402

import flatbuffers  # noqa: E402
import grpc  # noqa: E402
from atp.v1 import AtpProfile, AtpProfileQuery, ReserveLine, ReserveReply, ReserveRequest  # noqa: E402

C = grpc.StatusCode
seq = 0


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def ymd(d):
    return d.year * 10000 + d.month * 100 + d.day


def send(d, rows):
    """rows: (type, sku, location, qty, ref, date or None)."""
    global seq
    path = os.path.join(TMP, "ev-%d.csv" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write("event_id,source,seq,type,sku,location,qty,ref,to_location,reason,date\n")
        for typ, sku, loc, qty, ref, date in rows:
            seq += 1
            f.write("%d,erp,%d,%s,%s,%s,%d,%s,,,%s\n" % (seq, seq, typ, sku, loc, qty, ref, date.isoformat() if date else ""))
    r = d.send(path, timeout=60)
    check(r.returncode == 0, "atpctl send: " + r.stderr.strip()[-200:])


def profile_req(sku, locs=(), horizon=0):
    b = flatbuffers.Builder(128)
    ls = [b.CreateString(x) for x in locs]
    s = b.CreateString(sku)
    v = None
    if ls:
        AtpProfileQuery.StartLocationsVector(b, len(ls))
        for o in reversed(ls):
            b.PrependUOffsetTRelative(o)
        v = b.EndVector()
    AtpProfileQuery.Start(b)
    AtpProfileQuery.AddSku(b, s)
    if v is not None:
        AtpProfileQuery.AddLocations(b, v)
    AtpProfileQuery.AddHorizonDays(b, horizon)
    b.Finish(AtpProfileQuery.End(b))
    return bytes(b.Output())


def reserve_req(rid, lines, policy=0):
    """lines: (sku, location, qty, need_by date or None)."""
    b = flatbuffers.Builder(128)
    offs = []
    for sku, loc, qty, need_by in lines:
        s, l = b.CreateString(sku), b.CreateString(loc)
        ReserveLine.Start(b)
        ReserveLine.AddSku(b, s)
        ReserveLine.AddLocation(b, l)
        ReserveLine.AddQty(b, qty)
        if need_by:
            ReserveLine.AddNeedBy(b, need_by if isinstance(need_by, int) else ymd(need_by))
        offs.append(ReserveLine.End(b))
    ReserveRequest.StartLinesVector(b, len(offs))
    for o in reversed(offs):
        b.PrependUOffsetTRelative(o)
    v = b.EndVector()
    r = b.CreateString(rid)
    ReserveRequest.Start(b)
    ReserveRequest.AddReservationId(b, r)
    ReserveRequest.AddLines(b, v)
    ReserveRequest.AddPolicy(b, policy)
    b.Finish(ReserveRequest.End(b))
    return bytes(b.Output())


def call(d, method, body):
    try:
        return d.channel.unary_unary(method)(body, timeout=10), C.OK, ""
    except grpc.RpcError as e:
        return None, e.code(), e.details() or ""


def profile(d, sku, locs=(), horizon=10):
    m, code, msg = call(d, "/atp.v1.Atp/GetAtpProfile", profile_req(sku, locs, horizon))
    if m is None:
        return code, msg
    p = AtpProfile.AtpProfile.GetRootAs(m)
    return [(p.Days(i).Date(), p.Days(i).Atp(), p.Days(i).Inbound(), p.Days(i).Available())
            for i in range(p.DaysLength())]


def reserve(d, rid, lines, policy=0):
    m, code, msg = call(d, "/atp.v1.Atp/Reserve", reserve_req(rid, lines, policy))
    if m is None:
        return code, msg
    r = ReserveReply.ReserveReply.GetRootAs(m)
    return [(r.Lines(i).Confirmed(), r.Lines(i).PromisedDate(), r.Lines(i).Withdrawn()) for i in range(r.LinesLength())]


def main():
    d = Daemon("inbound", ["shards=2", "workers=1", "tick_ms=50"])
    t0 = today()
    day = [t0 + datetime.timedelta(days=k) for k in range(12)]
    send(d, [("RECEIPT", "FUT", "DC1", 5, "", None),
             ("SUPPLY", "FUT", "DC1", 10, "PO-1", day[3]),
             ("SUPPLY", "FUT", "DC1", 20, "PO-2", day[6]),
             ("SUPPLY", "FUT", "DC2", 7, "PO-3", day[2]),
             ("RECEIPT", "OTHER", "DC1", 3, "", None)])

    p = profile(d, "FUT", ["DC1"])
    check(len(p) == 10 and p[0] == (ymd(day[0]), 5, 0, 5), "GetAtpProfile: today, on hand only: %s" % (p[:1],))
    check(p[3][2:] == (10, 15) and p[5][2] == 10 and p[6][2:] == (30, 35) and p[9][2] == 30,
          "GetAtpProfile: each PO from its ETA on: %s" % ([x[2] for x in p],))
    both = profile(d, "FUT", (), 30)
    check(len(both) == 30 and both[2][2] == 7 and both[3][2] == 17 and both[29][3] == 5 + 37,
          "GetAtpProfile: every location by default, 30 days by default")
    check(profile(d, "FUT", (), 400)[0] == C.INVALID_ARGUMENT, "GetAtpProfile: a horizon past 366 days is INVALID_ARGUMENT")
    check(profile(d, "NOPE")[0] == C.NOT_FOUND, "GetAtpProfile: an unknown SKU is NOT_FOUND")

    check(reserve(d, "NOW", [("FUT", "DC1", 5, day[4])]) == [(5, 0, False)], "need-by, and on hand covers it: confirmed now")
    check(reserve(d, "LATER", [("FUT", "DC1", 8, day[4])]) == [(8, ymd(day[3]), False)],
          "need-by, stock short: promised against PO-1, its date in the answer")
    check(reserve(d, "SOON", [("FUT", "DC1", 5, day[4])]) == [(0, 0, False)], "more than arrives by the need-by day: not confirmed")
    check(reserve(d, "LAST", [("FUT", "DC1", 15, day[8])]) == [(15, ymd(day[6]), False)], "promised against PO-2")
    check(reserve(d, "LATER", [("FUT", "DC1", 8, day[4])]) == [(8, ymd(day[3]), False)], "a retry answers the promise")
    check(reserve(d, "PLAIN", [("FUT", "DC1", 1, None)]) == [(0, 0, False)], "without a need-by day: on hand only")
    p = profile(d, "FUT", ["DC1"])
    check(p[0][1] == 0 and p[3][2] == 2 and p[6][2] == 7, "promises hold their supply: %s" % ([x[1:3] for x in p],))
    code, msg = reserve(d, "BAD", [("FUT", "DC1", 1, 20261399)])
    check(code == C.INVALID_ARGUMENT and "lines[0].need_by" in msg, "a need-by that is no date: INVALID_ARGUMENT (%s)" % msg)
    code, msg = reserve(d, "BAD", [("FUT", "DC1", 1, day[3])], policy=2)
    check(code == C.INVALID_ARGUMENT and "need_by" in msg, "need-by with PARTIAL: INVALID_ARGUMENT (%s)" % msg)
    check(reserve(d, "WHOLE", [("FUT", "DC2", 7, day[2]), ("OTHER", "DC1", 3, None)], policy=1) ==
          [(7, ymd(day[2]), False), (3, 0, False)], "ALL_OR_NOTHING: one line promised, one now")

    atpctl = [os.environ["ATPCTL"]]
    out = subprocess.run(atpctl + ["profile", "--grpc", "127.0.0.1:%d" % d.grpc, "--horizon", "7", "FUT", "DC1"],
                         capture_output=True, text=True, timeout=30)
    lines = out.stdout.splitlines()
    check(out.returncode == 0 and lines[0] == "date,atp,inbound,available" and len(lines) == 8 and
          lines[4] == "%s,0,2,2" % day[3].isoformat(), "atpctl profile: a row per day: " + out.stdout + out.stderr)
    out = subprocess.run(atpctl + ["reserve", "--grpc", "127.0.0.1:%d" % d.grpc, "--need-by", day[9].isoformat(), "CLI",
                                   "FUT", "DC1", "3"], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0 and ("FUT,DC1,3,3,%s,false" % day[6].isoformat()) in out.stdout,
          "atpctl reserve --need-by: promised, with its date: " + out.stdout + out.stderr)

    def state():
        return (profile(d, "FUT", (), 12), reserve(d, "LATER", [("FUT", "DC1", 8, day[4])]),
                reserve(d, "LAST", [("FUT", "DC1", 15, day[8])]))

    before = state()
    d.stop(9)
    d.start()
    check(state() == before, "after SIGKILL: the profile and the promises as they were")
    out = subprocess.run([os.environ["ATPCTL"], "snapshot", "--grpc", "127.0.0.1:%d" % d.grpc, "inbound test"],
                         capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "atpctl snapshot: " + out.stdout + out.stderr)
    d.stop(9)
    d.start()
    check(state() == before, "after a snapshot and SIGKILL: the same")

    # PO-1 arrives: the promise against it opens (reserved on hand); PO-2 is cancelled: LAST is withdrawn.
    send(d, [("RECEIPT", "FUT", "DC1", 10, "PO-1", None), ("SUPPLY", "FUT", "DC1", 0, "PO-2", None)])
    p = profile(d, "FUT", ["DC1"])
    check(p[0][1] == 2 and all(x[2] == 0 for x in p), "PO-1 received (8 of it promised), PO-2 cancelled: %s" % (p[:1],))
    check(reserve(d, "LAST", [("FUT", "DC1", 15, day[8])]) == [(15, 0, True)], "the cancelled PO's promise: withdrawn")
    check(d.stop() == 0, "atpd stops cleanly")
    if failures:
        print("%d failed" % len(failures))
        sys.exit(1)


main()
