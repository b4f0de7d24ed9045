"""Network pieces in front of the embedded broker: a throwaway PKI, a real TLS terminator (socat)
and a TCP proxy that can be cut (a broker outage). All on 127.0.0.1.

The vendored Tansu 0.6.0 does not serve TLS itself, so TLS ends in socat, which forwards plain
Kafka to Tansu; Tansu advertises the terminator's address (EmbeddedBroker(advertised=...)), so
every connection a client opens after bootstrapping goes through TLS too.
"""
from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streams.testing.broker import EmbeddedBroker, _die_with_parent, _free_port

HOST = "localhost"  # the name in the server certificate; 127.0.0.1 is then a "wrong hostname"


def openssl(cwd: Path, *args: str) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl CLI missing (installed by .ci/run)")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> dict[str, Path]:
    """CA, server certificate for DNS:localhost, client certificate, and an unrelated second CA."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "server.ext").write_text(f"subjectAltName=DNS:{HOST}\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for ca in ("ca", "other-ca"):
        openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                "-days", "2", "-subj", f"/CN=slaproc test {ca}")
    for name in ("server", "client"):
        openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={HOST if name == 'server' else 'slaproc-client'}")
        openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {"ca": d / "ca.pem", "other_ca": d / "other-ca.pem", "server": d / "server.pem",
            "server_key": d / "server.key", "client": d / "client.pem", "client_key": d / "client.key"}


@dataclass
class TlsBroker:
    """An embedded Tansu behind socat's TLS listener; `url` is what clients use."""

    broker: EmbeddedBroker
    socat: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"kafka://{HOST}:{self.port}"

    @property
    def plaintext_url(self) -> str:
        """Tansu's own (PLAINTEXT) listener: a TLS client pointed here is a misconfiguration."""
        return self.broker.url.replace("127.0.0.1", HOST)


@contextlib.contextmanager
def tls_broker(pki: dict[str, Path], *, mtls: bool, authentication: bool = False) -> Iterator[TlsBroker]:
    """Tansu + socat OPENSSL-LISTEN (client certificates signed by the CA required when `mtls`;
    Tansu's SASL SCRAM login required when `authentication`)."""
    if shutil.which("socat") is None:
        raise RuntimeError("socat missing (installed by .ci/run)")
    port = _free_port("127.0.0.1")
    broker = EmbeddedBroker(advertised=f"{HOST}:{port}", authentication=authentication)
    broker.start()
    listen = (f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={pki['server']},key={pki['server_key']},"
              f"cafile={pki['ca']},verify={1 if mtls else 0}")
    socat = subprocess.Popen(["socat", "-d", listen, f"TCP:127.0.0.1:{broker.port}"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, preexec_fn=_die_with_parent)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or socat.poll() is not None:
                raise RuntimeError(f"socat did not listen on {port} (exit {socat.poll()})")
            time.sleep(0.05)
        yield TlsBroker(broker, socat, port)
    finally:
        socat.kill()
        socat.wait(5)
        broker.stop()


class TcpProxy:
    """A TCP forwarder 127.0.0.1:port -> target that can be cut: `cut()` closes every connection and
    stops listening (clients get connection refused, as from a broker that is down); `restore()`
    listens again on the same port."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = port or _free_port("127.0.0.1")
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.connections = 0  # accepted over the proxy's life

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut()/stop()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
                self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with self._lock:
                    self._conns.discard(s)
                s.close()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = set(self._conns), set()
        if listener is not None:
            listener.close()
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.start()

    stop = cut
