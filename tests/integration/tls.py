#!/usr/bin/env python3
"""TLS, client identities and authorization on both listeners, with real
processes: certificates made here with openssl (two CAs, a server
certificate near its expiry, clients for the four roles, one expired, one
of another CA), atpd with tls_cert/tls_client_ca/authz_file, grpcio's
secure_channel and Python's ssl for the event stream.

Checks: allowed calls work; no certificate, another CA's, an expired one,
an unknown bearer token: UNAUTHENTICATED; a known identity outside its
grant (a method, a channel): PERMISSION_DENIED, nothing applied; a WMS
certificate sending as another site's source: Welcome ATP_E_FORBIDDEN,
nothing applied, its own stream unaffected; plaintext and TLS 1.2 refused;
the expiry warning and metric; SIGHUP: a new certificate for new
connections while an established one keeps working, and a revoked
identity refused on its open connection. Usage: tls.py ATPD ATPCTL"""
import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["ATPD"], os.environ["ATPCTL"] = sys.argv[1], sys.argv[2]
import grpc  # noqa: E402
from atp_harness import TMP, check, failures, subscribe_req  # noqa: E402
from reserve_wire import reserve_req  # noqa: E402
from stream_wire import batch, hello, reply  # noqa: E402
import flatbuffers  # noqa: E402
from atp.v1 import AtpQuery, AtpReply  # noqa: E402

C = grpc.StatusCode
PKI = os.path.join(TMP, "pki")
TOKEN = "s3cret-capture-token"


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, cwd=PKI, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki():
    os.makedirs(PKI)
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                ca + ".key", "-out", ca + ".pem", "-days", "30", "-subj", "/CN=atp test " + ca)

    def leaf(name, cn, days=30, ca="ca", ext=None):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
                "-out", name + ".csr", "-subj", "/CN=" + cn)
        extra = []
        if ext:
            open(os.path.join(PKI, name + ".ext"), "w").write(ext + "\n")
            extra = ["-extfile", name + ".ext"]
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
                "-out", name + ".pem", "-days", str(days), *extra)

    san = "subjectAltName=DNS:localhost,IP:127.0.0.1"
    leaf("server", "atpd", days=10, ext=san)       # within 14 days of its end: the warning
    leaf("server2", "atpd", days=60, ext=san)      # its renewal
    for role in ("wms-site1", "order-capture", "operator", "loadgen"):
        leaf(role, role)
    leaf("bridge", "bridge-host", ext="subjectAltName=URI:spiffe://site/bridge")  # identified by its SAN URI
    leaf("rogue", "order-capture", ca="other-ca")  # the right name, the wrong CA
    # expired: signed through `openssl ca`, which takes explicit dates
    open(os.path.join(PKI, "ca.cnf"), "w").write(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
        "default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n")
    open(os.path.join(PKI, "index.txt"), "w").close()
    open(os.path.join(PKI, "serial"), "w").write("1000\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "expired.key",
            "-out", "expired.csr", "-subj", "/CN=order-capture")
    openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "expired.csr",
            "-out", "expired.pem", "-startdate", "20200101000000Z", "-enddate", "20200102000000Z")


def pki(name):
    return os.path.join(PKI, name)


AUTHZ = """# the four roles
allow wms-site1 source site1-*
allow order-capture call read write
allow spiffe://site/bridge channel web
allow operator call read admin
allow loadgen source *
allow loadgen call read write
token capture-svc sha256:%s
allow capture-svc call read write
""" % hashlib.sha256(TOKEN.encode()).hexdigest()


class Tls:
    """atpd with TLS on both listeners."""

    def __init__(self):
        self.log = os.path.join(TMP, "atpd.log")
        self.authz = os.path.join(TMP, "authz")
        open(self.authz, "w").write(AUTHZ)
        self.cert = os.path.join(TMP, "cert.pem")
        open(self.cert, "wb").write(open(pki("server.pem"), "rb").read())
        args = [os.environ["ATPD"], "--data", os.path.join(TMP, "data")]
        for s in ["listen=127.0.0.1:0", "grpc_listen=127.0.0.1:0", "metrics_listen=127.0.0.1:0",
                  "max_positions=4096", "max_lines=8192", "tls_cert=" + self.cert, "tls_key=" + pki("server.key"),
                  "tls_client_ca=" + pki("ca.pem"), "authz_file=" + self.authz, "channel.web.share=1", "clock=frozen"]:
            args += ["--set", s]
        self.proc = subprocess.Popen(args, stderr=open(self.log, "w"))
        for _ in range(1200):
            text = open(self.log).read()
            m = re.search(r"event stream listening on \S+ \(port (\d+)\)", text)
            g = re.search(r"grpc listening on \S+ \(port (\d+)\)", text)
            x = re.search(r"metrics listening on \S+ \(port (\d+)\)", text)
            if m and g and x and "atpd: serving" in text:
                self.tcp, self.grpc, self.metrics = int(m.group(1)), int(g.group(1)), int(x.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit("atpd did not start: " + open(self.log).read()[-3000:])

    def channel(self, who=None, ca="ca.pem"):
        key = open(pki(who + ".key"), "rb").read() if who else None
        cert = open(pki(who + ".pem"), "rb").read() if who else None
        creds = grpc.ssl_channel_credentials(open(pki(ca), "rb").read(), key, cert)
        return grpc.secure_channel("localhost:%d" % self.grpc, creds)

    def metric(self, name):
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics, timeout=10).read().decode()
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else None

    def stream(self, who, source):
        """A TLS connection of the event stream as who, its Hello sent: (socket, Welcome)."""
        ctx = ssl.create_default_context(cafile=pki("ca.pem"))
        if who:
            ctx.load_cert_chain(pki(who + ".pem"), pki(who + ".key"))
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.tcp), timeout=10), server_hostname="localhost")
        s.sendall(hello(source))
        return s, reply(s, True)


def atp_query(sku):
    b = flatbuffers.Builder(64)
    s = b.CreateString(sku)
    AtpQuery.Start(b)
    AtpQuery.AddSku(b, s)
    b.Finish(AtpQuery.End(b))
    return bytes(b.Output())


def call(ch, method, body, metadata=None):
    """(status code, message, reply bytes)."""
    try:
        r = ch.unary_unary(method)(body, timeout=10, metadata=metadata)
        return C.OK, "", r
    except grpc.RpcError as e:
        return e.code(), e.details() or "", None


def network_atp(ch, metadata=None):
    code, msg, r = call(ch, "/atp.v1.Atp/GetAtp", atp_query("SKU-1"), metadata)
    return AtpReply.AtpReply.GetRootAs(r).NetworkAtp() if code == C.OK else (code, msg)


def snapshot_req():
    b = flatbuffers.Builder(32)
    b.StartObject(1)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def receipts(first, n, qty=10):
    return [{"event_id": str(1000 + first + i), "seq": str(first + i), "type": "RECEIPT", "sku": "SKU-1",
             "location": "DC1", "qty": str(qty)} for i in range(n)]


def main():
    make_pki()
    d = Tls()
    log = open(d.log).read()
    check("expires in" in log and "renew tls_cert" in log, "a certificate within 14 days of its end: a warning at start")
    check(d.metric("atpd_tls_cert_expiring") == 1, "... and atpd_tls_cert_expiring 1")

    # The event stream.
    s1, w = d.stream("wms-site1", "site1-wms")
    check(w is not None and w.error == 0, "stream: wms-site1 sends as site1-wms (granted site1-*)")
    s1.sendall(batch(receipts(1, 3)))
    a = reply(s1, False)
    check(a is not None and a.durable == 3, "stream: its events durable over TLS (durable_seq 3)")
    s2, w = d.stream("wms-site1", "site2-wms")
    check(w is not None and w.error == -25 and "may not send as source site2-wms" in w.reason,
          "stream: wms-site1 as site2-wms: Welcome ATP_E_FORBIDDEN (%s)" % (w and w.reason))
    s2.close()
    s3, w = d.stream("wms-site1", "@grpc")
    check(w is not None and w.error == -6, "stream: an '@' source refused (ATP_E_SOURCE)")
    s3.close()
    s4, w = d.stream(None, "site1-wms")
    check(w is not None and w.error == -24 and "no client certificate" in w.reason,
          "stream: no client certificate: Welcome ATP_E_UNAUTHENTICATED (%s)" % (w and w.reason))
    s4.close()
    s1.sendall(batch(receipts(4, 1)))
    a = reply(s1, False)
    check(a is not None and a.durable == 4, "stream: the granted connection unaffected by the refused Hellos")
    plain = socket.create_connection(("127.0.0.1", d.tcp), timeout=10)
    plain.sendall(hello("site1-wms"))
    check(reply(plain, True, 5) is None, "stream: a plaintext Hello on the TLS port: closed, no Welcome")
    plain.close()
    old = ssl.create_default_context(cafile=pki("ca.pem"))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    old.load_cert_chain(pki("wms-site1.pem"), pki("wms-site1.key"))
    try:
        old.wrap_socket(socket.create_connection(("127.0.0.1", d.tcp), timeout=10), server_hostname="localhost")
        refused12 = False
    except (ssl.SSLError, ConnectionResetError):
        refused12 = True
    check(refused12, "TLS 1.2 refused (tls_min_version = 1.3 by default)")

    # atpctl and atp-loadgen's clients: flags and environment.
    csv = os.path.join(TMP, "site1.csv")
    with open(csv, "w") as f:
        f.write("event_id,source,seq,type,sku,location,qty,ref,to_location,reason,occurred_at,ttl_ms,partial\n")
        for i in range(1, 201):
            f.write("%d,site1-csv,%d,RECEIPT,SKU-2,DC1,1,,,,0,,\n" % (5000 + i, i))
    tls_flags = ["--tls-ca", pki("ca.pem"), "--tls-cert", pki("wms-site1.pem"), "--tls-key", pki("wms-site1.key")]
    r = subprocess.run([os.environ["ATPCTL"], "send", "--tcp", "localhost:%d" % d.tcp, csv] + tls_flags,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "atpctl send --tls-ca/--tls-cert/--tls-key: 200 events durable (%s)" % r.stderr.strip()[-200:])
    r = subprocess.run([os.environ["ATPCTL"], "send", "--tcp", "localhost:%d" % d.tcp, "--timeout", "3", csv,
                        "--tls-ca", pki("ca.pem")], capture_output=True, text=True, timeout=60)
    check(r.returncode != 0 and "ATP_E_UNAUTHENTICATED" in r.stderr, "atpctl send without a certificate: refused (%s)" %
          r.stderr.strip()[-120:])
    env = dict(os.environ, ATP_TLS_CA=pki("ca.pem"), ATP_TOKEN=TOKEN)
    r = subprocess.run([os.environ["ATPCTL"], "atp", "--grpc", "localhost:%d" % d.grpc, "SKU-2"], env=env,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and "200" in r.stdout, "atpctl atp with ATP_TLS_CA and ATP_TOKEN: 200 units (%s%s)" %
          (r.stdout.strip()[-80:], r.stderr.strip()[-120:]))
    r = subprocess.run([os.environ["ATPCTL"], "atp", "--grpc", "localhost:%d" % d.grpc, "SKU-2", "--tls-ca",
                        pki("other-ca.pem")], capture_output=True, text=True, timeout=60)
    check(r.returncode != 0 and "certificate" in r.stderr, "atpctl against a server its CA does not sign: refused (%s)" %
          r.stderr.strip()[-160:])

    lg = os.path.join(os.path.dirname(os.environ["ATPCTL"]), "atp-loadgen")
    r = subprocess.run([lg, "--order-lines", "300", "--skus", "50", "--locations", "2", "--prefix", "lg-", "--tcp", "localhost:%d" % d.tcp, "--grpc",
                        "localhost:%d" % d.grpc, "--asap", "--tls-ca", pki("ca.pem"), "--tls-cert", pki("loadgen.pem"),
                        "--tls-key", pki("loadgen.key")], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0 and "errors: 0 (0 broken)" in r.stdout + r.stderr,
          "atp-loadgen over TLS with a client certificate: a day streamed and reserved (%s)" %
          (r.stdout + r.stderr).strip()[-200:])

    # gRPC, the four roles.
    capture, bridge, operator = d.channel("order-capture"), d.channel("bridge"), d.channel("operator")
    check(network_atp(capture) == 40, "grpc: order-capture reads (GetAtp: 40 units received)")
    code, msg, _ = call(capture, "/atp.v1.Atp/Reserve", reserve_req("O1", [("SKU-1", "DC1", 5)]))
    check(code == C.OK, "grpc: order-capture reserves (%s %s)" % (code, msg))
    code, msg, _ = call(capture, "/atp.v1.Admin/Snapshot", snapshot_req())
    check(code == C.PERMISSION_DENIED and "order-capture may not call" in msg,
          "grpc: order-capture Admin/Snapshot: PERMISSION_DENIED (%s)" % msg)
    try:
        next(iter(capture.unary_stream("/atp.v1.Atp/Subscribe")(subscribe_req("web"), timeout=10)))
        code = C.OK
    except grpc.RpcError as e:
        code = e.code()
    check(code == C.PERMISSION_DENIED, "grpc: order-capture Subscribe: PERMISSION_DENIED")
    code, msg, _ = call(bridge, "/atp.v1.Atp/Reserve", reserve_req("B1", [("SKU-1", "DC1", 5)]))
    check(code == C.PERMISSION_DENIED, "grpc: the bridge (SAN URI) Reserve: PERMISSION_DENIED (%s)" % msg)
    check(network_atp(capture) == 35, "grpc: the refused Reserve applied nothing (ATP 35)")
    stream = bridge.unary_stream("/atp.v1.Atp/Subscribe")(subscribe_req("web"), timeout=30)
    first = next(iter(stream))
    check(len(first) > 0, "grpc: the bridge subscribes to channel web")
    stream.cancel()
    code, msg, _ = call(operator, "/atp.v1.Admin/Snapshot", snapshot_req())
    check(code == C.OK, "grpc: the operator writes a snapshot (%s %s)" % (code, msg))

    # Who is refused, and how.
    anon = d.channel(None)
    code, msg, _ = call(anon, "/atp.v1.Atp/GetAtp", atp_query("SKU-1"))
    check(code == C.UNAUTHENTICATED and "no client certificate" in msg, "grpc: no certificate: UNAUTHENTICATED (%s)" % msg)
    code, msg, _ = call(anon, "/grpc.health.v1.Health/Check", b"")
    check(code == C.OK, "grpc: Health/Check open to all")
    check(network_atp(anon, [("authorization", "Bearer " + TOKEN)]) == 35, "grpc: a bearer token instead of a certificate")
    r = network_atp(anon, [("authorization", "Bearer wrong")])
    check(r[0] == C.UNAUTHENTICATED if isinstance(r, tuple) else False, "grpc: an unknown token: UNAUTHENTICATED")
    for who, ca, why in (("rogue", "ca.pem", "unable to"), ("expired", "ca.pem", "expired")):
        r = network_atp(d.channel(who, ca))
        check(isinstance(r, tuple) and r[0] == C.UNAUTHENTICATED and why in r[1],
              "grpc: %s certificate: UNAUTHENTICATED (%s)" % (who, r[1] if isinstance(r, tuple) else r))
    check(d.metric('atpd_auth_refusals_total{reason="unauthenticated"}') >= 5 and
          d.metric('atpd_auth_refusals_total{reason="denied"}') >= 4, "refusals counted in atpd_auth_refusals_total")
    check("refused (permission denied): wms-site1: Hello as site2-wms" in open(d.log).read(),
          "a refusal's log line names the identity and the operation")

    # SIGHUP: a renewed certificate, order-capture revoked.
    open(d.cert, "wb").write(open(pki("server2.pem"), "rb").read())
    open(pki("server.key"), "wb").write(open(pki("server2.key"), "rb").read())
    open(d.authz, "w").write(AUTHZ.replace("allow order-capture call read write\n", ""))
    d.proc.send_signal(signal.SIGHUP)
    for _ in range(100):
        if d.metric("atpd_tls_cert_expiring") == 0:
            break
        time.sleep(0.05)
    check(d.metric("atpd_tls_cert_expiring") == 0, "SIGHUP: the renewed certificate is in force")
    pem = ssl.get_server_certificate(("127.0.0.1", d.grpc))
    check(pem.strip() == open(pki("server2.pem")).read().strip(), "SIGHUP: a new connection gets the new certificate")
    code, msg, _ = call(operator, "/atp.v1.Admin/Snapshot", snapshot_req())
    check(code == C.OK, "SIGHUP: an established connection goes on (the operator's)")
    r = network_atp(capture)
    check(isinstance(r, tuple) and r[0] == C.PERMISSION_DENIED, "SIGHUP: revoked order-capture refused on its open connection")
    s1.sendall(batch(receipts(5, 1)))
    a = reply(s1, False)
    check(a is not None and a.durable == 5, "SIGHUP: the WMS stream goes on")
    for ch in (capture, bridge, operator, anon):
        ch.close()
    s1.close()
    d.proc.send_signal(signal.SIGTERM)
    check(d.proc.wait(timeout=60) == 0, "atpd stops cleanly")

    # tls_min_version = 1.2 lets a TLS 1.2 client in.
    log12 = os.path.join(TMP, "tls12.log")
    p = subprocess.Popen([os.environ["ATPD"], "--data", os.path.join(TMP, "data12"), "--set", "listen=127.0.0.1:0",
                          "--set", "grpc_listen=none", "--set", "metrics_listen=none", "--set", "max_positions=1024",
                          "--set", "max_lines=1024", "--set", "tls_cert=" + pki("server2.pem"), "--set",
                          "tls_key=" + pki("server2.key"), "--set", "tls_min_version=1.2"], stderr=open(log12, "w"))
    port = None
    for _ in range(600):
        m = re.search(r"event stream listening on \S+ \(port (\d+)\)", open(log12).read())
        if m and "atpd: serving" in open(log12).read():
            port = int(m.group(1))
            break
        time.sleep(0.05)
    ctx12 = ssl.create_default_context(cafile=pki("ca.pem"))
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    s12 = ctx12.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost")
    s12.sendall(hello("old-wms"))
    w = reply(s12, True)
    check(s12.version() == "TLSv1.2" and w is not None and w.error == 0, "tls_min_version = 1.2: a TLS 1.2 client served")
    s12.close()
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)

    # The settings: a TLS setting alone, and plaintext beyond loopback, refuse the start.
    r = subprocess.run([os.environ["ATPD"], "--check-config", "/dev/null", "--set", "tls_cert=" + pki("server.pem")],
                       capture_output=True, text=True)
    check(r.returncode != 0 and "go together" in r.stderr, "tls_cert without tls_key: refused")
    r = subprocess.run([os.environ["ATPD"], "--check-config", "/dev/null", "--set", "listen=0.0.0.0:7400"],
                       capture_output=True, text=True)
    check(r.returncode != 0 and "allow_plaintext" in r.stderr, "plaintext beyond loopback: refused")
    r = subprocess.run([os.environ["ATPD"], "--check-config", "/dev/null", "--set", "listen=0.0.0.0:7400", "--set",
                        "tls_cert=" + pki("server2.pem"), "--set", "tls_key=" + pki("server2.key")],
                       capture_output=True, text=True)
    check(r.returncode == 0, "TLS beyond loopback: accepted")
    bad = os.path.join(TMP, "bad-authz")
    open(bad, "w").write("allow x call Fly\n")
    for how in (["--check-config", "/dev/null"], ["--data", os.path.join(TMP, "data2"), "--set", "listen=127.0.0.1:0",
                                                  "--set", "grpc_listen=127.0.0.1:0", "--set", "metrics_listen=none"]):
        r = subprocess.run([os.environ["ATPD"], *how, "--set", "authz_file=" + bad], capture_output=True, text=True,
                           timeout=60)
        check(r.returncode != 0 and bad + ":1:" in r.stderr, "%s: a bad authorization file names its line" % how[0])
    r = subprocess.run([os.environ["ATPD"], "--check-config", "/dev/null", "--set", "tls_cert=" + pki("server.pem"),
                        "--set", "tls_key=" + pki("wms-site1.key")], capture_output=True, text=True)
    check(r.returncode != 0 and "tls_key" in r.stderr, "--check-config: a key that is not the certificate's: refused")
    # Started as root: it becomes `user` before opening anything.
    if os.geteuid() != 0:
        print("skip the user setting: not root (it only applies to a start as root)")
    else:
        import pwd
        import shutil
        import tempfile
        nobody = pwd.getpwnam("nobody")
        home = tempfile.mkdtemp(prefix="atp-user-")
        os.chmod(home, 0o755)
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
        log = os.path.join(TMP, "user.log")
        p = subprocess.Popen([os.environ["ATPD"], "--data", home + "/data", "--set", "user=nobody", "--set",
                              "listen=127.0.0.1:0", "--set", "grpc_listen=127.0.0.1:0", "--set", "metrics_listen=none",
                              "--set", "max_positions=1024", "--set", "max_lines=1024"], stderr=open(log, "w"))
        for _ in range(600):
            if "atpd: serving" in open(log).read() or p.poll() is not None:
                break
            time.sleep(0.05)
        uids = [line.split()[1:] for line in open("/proc/%d/status" % p.pid) if line.startswith(("Uid:", "Gid:"))] \
            if p.poll() is None else []
        owners = {os.stat(os.path.join(dp, f)).st_uid for dp, _, fs in os.walk(home + "/data") for f in fs}
        check(uids and all(int(x) == nobody.pw_uid for x in uids[0]) and owners == {nobody.pw_uid},
              "user = nobody: every uid of the process and every file it made are nobody's (%s, %s)" % (uids, owners))
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)
    print("%d failed" % len(failures))
    sys.exit(1 if failures else 0)


main()
