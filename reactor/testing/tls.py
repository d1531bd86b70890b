"""Throwaway TLS certificates for tests, made at run time.

:func:`make_certificate` writes a CA and a server certificate it signed, for
``localhost``, ``127.0.0.1`` and ``::1``, with the ``cryptography`` package if
installed, else with the ``openssl`` command line. The conformance suite's
``tls_certificate`` fixture and :class:`reactor.testing.AsyncHTTPSTestCase`
use it; so can a user's own tests.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import shutil
import ssl
import subprocess
from pathlib import Path

HOSTNAMES = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")


@dataclasses.dataclass(frozen=True)
class TLSCertificate:
    ca_file: Path
    """The CA certificate (PEM) that clients trust."""
    cert_file: Path
    """The server certificate (PEM), valid for HOSTNAMES and ADDRESSES."""
    key_file: Path
    """The server's private key (PEM, unencrypted)."""

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies the server against the CA, hostname included."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def _with_cryptography(directory: Path) -> TLSCertificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reactor test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in HOSTNAMES]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTNAMES[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    paths = TLSCertificate(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _with_openssl(directory: Path, openssl: str) -> TLSCertificate:
    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    ec_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    run(
        "req", "-x509", *ec_key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=reactor test CA",
        "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
    )  # fmt: skip
    run("req", "-new", *ec_key, "-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=localhost")
    san = ",".join([f"DNS:{n}" for n in HOSTNAMES] + [f"IP:{a}" for a in ADDRESSES])
    (directory / "cert.ext").write_text(
        f"subjectAltName={san}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    run(
        "x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "cert.pem", "-days", "2", "-extfile", "cert.ext",
    )  # fmt: skip
    return TLSCertificate(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")


def make_certificate(directory: Path, tool: str = "auto") -> TLSCertificate:
    """Write a CA and a server certificate into ``directory``.

    ``tool``: "cryptography", "openssl", or "auto" (the first available).
    Raises RuntimeError naming what to install if neither is available.
    """
    if tool in ("auto", "cryptography"):
        try:
            import cryptography  # noqa: F401
        except ImportError:
            if tool == "cryptography":
                raise
        else:
            return _with_cryptography(directory)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError(
            "cannot make a test certificate: install the 'cryptography' package "
            "or the 'openssl' command line tool"
        )
    return _with_openssl(directory, openssl)
