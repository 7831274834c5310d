#!/usr/bin/python3
"""Load this proxy's rotated key and certificate into the running HAProxy, over its admin socket.

A reload would start new HAProxy workers and leave every established AMQP session in the old one, which no longer
runs health checks (HAProxy stops them in a stopping process): until those sessions end, or hard-stop-after, a
broker that falls silent is never marked DOWN for them and their workers get no RST. `set ssl cert` and
`commit ssl cert` swap what the running workers serve and present to the brokers, for new connections;
established sessions stay where they are, still checked.

A new CA (yours, or a new deployment CA: a rotation keeps the CA) reloads HAProxy instead: committing a CA file at
run time failed on HAProxy 3.0.11 ("unable to load SSL private key into SSL Context").

Usage: haproxy_tls_update.py <admin socket> <certificate> <key> <CA certificate>. A file HAProxy does not load
(TLS off on both sides) is left to the next start. The key travels over the root-only socket, never on a command
line; nothing read from the files is printed.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

PEM = re.compile(r"-----BEGIN [A-Z ]+-----\n.*?\n-----END [A-Z ]+-----", re.DOTALL)
CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\n.*?\n-----END CERTIFICATE-----", re.DOTALL)
FINGERPRINT = re.compile(r"SHA1 FingerPrint: ([0-9A-F]+)")
CONNECT_TRIES, CONNECT_PAUSE_S = 20, 0.5


def ask(socket_path: str, command: str) -> str:
    """One command on the admin socket (non-interactive: HAProxy answers and closes). Retried while the socket
    is not there yet, as right after a start or a reload in the same run."""
    for attempt in range(CONNECT_TRIES):
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(socket_path)
                sock.sendall(command.encode())
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
                return answer.decode()
        except (FileNotFoundError, ConnectionRefusedError):
            if attempt == CONNECT_TRIES - 1:
                raise
            time.sleep(CONNECT_PAUSE_S)
    raise AssertionError("unreachable")


def on_disk(path: Path) -> list[str]:
    """SHA-1 fingerprints of the certificates in a PEM file, as HAProxy shows them."""
    return [
        hashlib.sha1(ssl.PEM_cert_to_DER_cert(pem), usedforsecurity=False).hexdigest().upper()
        for pem in CERTIFICATE.findall(path.read_text())
    ]


def loaded(socket_path: str, kind: str, path: Path) -> list[str] | None:
    """Fingerprints of what HAProxy holds for the file (`cert` or `ca-file`); None if it does not load it."""
    if str(path) not in ask(socket_path, f"show ssl {kind}\n").split():
        return None
    return FINGERPRINT.findall(ask(socket_path, f"show ssl {kind} {path}\n"))


def load_certificate(socket_path: str, cert: Path, key: Path) -> str:
    held = loaded(socket_path, "cert", cert)
    if held is None:
        return f"{cert}: not loaded by HAProxy, left to its next start"
    if held == on_disk(cert)[:1]:
        return f"{cert}: already served"
    # PEM sections only: HAProxy ends a payload at the first empty line.
    pem = "\n".join(PEM.findall(cert.read_text()) + PEM.findall(key.read_text()))
    answer = ask(socket_path, f"set ssl cert {cert} <<\n{pem}\n\n")
    if not re.search(r"transaction (created|updated) for", answer, re.IGNORECASE):
        ask(socket_path, f"abort ssl cert {cert}\n")
        raise SystemExit(f"{cert}: HAProxy refused the new certificate and key: {answer.strip()}")
    answer = ask(socket_path, f"commit ssl cert {cert}\n")
    if loaded(socket_path, "cert", cert) != on_disk(cert)[:1]:
        raise SystemExit(f"{cert}: HAProxy did not commit the new certificate: {answer.strip()}")
    return f"{cert}: committed"


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        raise SystemExit(__doc__)
    socket_path, cert, key, ca = argv[1], Path(argv[2]), Path(argv[3]), Path(argv[4])
    held = loaded(socket_path, "ca-file", ca)
    if held is not None and sorted(held) != sorted(on_disk(ca)):
        subprocess.run(["systemctl", "reload", "haproxy"], check=True)
        print(f"{ca}: a new CA, HAProxy reloaded")
        return 0
    print(load_certificate(socket_path, cert, key))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
