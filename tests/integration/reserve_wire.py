"""Reserve and Release requests (fbs/atp.fbs) for the Python tests. Import it
after the flatc classes of atp.fbs are on sys.path (atp_harness, grpc_api)."""
import flatbuffers
from atp.v1 import ReleaseRequest, ReserveLine, ReserveRequest


def vector(b, start, offsets):
    start(b, len(offsets))
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


PER_LINE, ALL_OR_NOTHING, PARTIAL = 0, 1, 2


def reserve_req(rid, lines, partial=False, ttl=0, policy=None):
    """lines: (sku, location, qty) each; policy: one of the three above, or absent."""
    b = flatbuffers.Builder(128)
    offs = []
    for sku, loc, qty in lines:
        s, l = b.CreateString(sku), b.CreateString(loc)
        ReserveLine.Start(b)
        ReserveLine.AddSku(b, s)
        ReserveLine.AddLocation(b, l)
        ReserveLine.AddQty(b, qty)
        offs.append(ReserveLine.End(b))
    v = vector(b, ReserveRequest.StartLinesVector, offs) if offs else None
    r = b.CreateString(rid)
    ReserveRequest.Start(b)
    ReserveRequest.AddReservationId(b, r)
    if v is not None:
        ReserveRequest.AddLines(b, v)
    ReserveRequest.AddAllowPartial(b, partial)
    ReserveRequest.AddTtlMs(b, ttl)
    if policy is not None:
        ReserveRequest.AddPolicy(b, policy)
    b.Finish(ReserveRequest.End(b))
    return bytes(b.Output())


def release_req(rid):
    b = flatbuffers.Builder(64)
    s = b.CreateString(rid)
    ReleaseRequest.Start(b)
    ReleaseRequest.AddReservationId(b, s)
    b.Finish(ReleaseRequest.End(b))
    return bytes(b.Output())
