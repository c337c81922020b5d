"""docker-registry started with auth (htpasswd or token) and/or TLS, on a free port."""

from __future__ import annotations

import contextlib
import datetime
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.registry import free_port


@dataclass
class TestCA:
    """A CA and a server certificate for 127.0.0.1 / localhost, as PEM files in DIR."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.dir / "server.crt"

    @property
    def key(self) -> Path:
        return self.dir / "server.key"


def make_ca(directory: Path) -> TestCA:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostctl test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    result = TestCA(directory)
    result.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    result.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    return result


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt  # Debian's python3-bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"


@contextlib.contextmanager
def registry(auth: str = "", tls: TestCA | None = None, *, host: str = "127.0.0.1",
             storage: Path | None = None) -> Iterator[tuple[str, Path]]:
    """Yield (host:port, storage dir) of a docker-registry with AUTH (YAML under auth:).

    STORAGE (kept) lets a plain instance push what an authenticated one then serves.
    """
    directory = Path(tempfile.mkdtemp(prefix="hostctl-regvar-"))
    storage = storage or directory / "storage"
    port = free_port()
    tls_yaml = (f"  tls:\n    certificate: {tls.cert}\n    key: {tls.key}\n" if tls else "")
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
        f"  delete:\n    enabled: true\nhttp:\n  addr: {host}:{port}\n{tls_yaml}{auth}")
    log = (directory / "log").open("wb")
    proc = subprocess.Popen([shutil.which("docker-registry") or "docker-registry", "serve",
                             str(config)], stdout=log, stderr=subprocess.STDOUT,
                            env=_registry_env())
    try:
        try:
            _wait(f"{'https' if tls else 'http'}://{host}:{port}/v2/", tls, proc)
        except RuntimeError as exc:
            log.flush()
            raise RuntimeError(f"{exc}: {(directory / 'log').read_text()[-1500:]}") from None
        yield f"{host}:{port}", storage
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def _registry_env() -> dict[str, str]:
    """The environment without REGISTRY_* (docker-registry reads them as configuration;
    REGISTRY_AUTH_FILE, the containers' auth file variable, would break it)."""
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}


def _wait(url: str, tls: TestCA | None, proc: subprocess.Popen[bytes]) -> None:
    context = ssl.create_default_context(cafile=str(tls.ca)) if tls else None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("docker-registry exited at start")
        try:
            urllib.request.urlopen(url, timeout=1, context=context)
            return
        except urllib.error.HTTPError:
            return  # 401: it answers
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("docker-registry did not start")


def htpasswd_auth(path: Path) -> str:
    return f"auth:\n  htpasswd:\n    realm: test\n    path: {path}\n"


def token_auth(realm: str, cert: Path) -> str:
    return (f"auth:\n  token:\n    realm: {realm}\n    service: test-registry\n"
            f"    issuer: test-issuer\n    rootcertbundle: {cert}\n")
