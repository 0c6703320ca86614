"""Certificates for a lab cluster: one CA, the apiserver's serving cert, the service-account key and one client
certificate per component (so the audit log says who wrote what). ECDSA P-256 keeps `up` fast."""
import base64
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn, org=None):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(subject, issuer, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365)))


class ClusterPKI:
    """Files in `directory`: ca.crt/key, apiserver.crt/key, sa.key/pub, <name>.crt/key per client."""

    def __init__(self, directory: Path, name: str, service_ip: str):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = _key()
        self.ca_cert = (_builder(_name(f"{name}-ca"), _name(f"{name}-ca"), self.ca_key.public_key())
                        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                       critical=True)
                        .sign(self.ca_key, hashes.SHA256()))
        self._write("ca", self.ca_cert, self.ca_key)
        self._serving(service_ip)
        sa = _key()
        (self.dir / "sa.key").write_bytes(_pem_key(sa))
        (self.dir / "sa.pub").write_bytes(sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def _write(self, stem, cert, key):
        (self.dir / f"{stem}.crt").write_bytes(_pem_cert(cert))
        (self.dir / f"{stem}.key").write_bytes(_pem_key(key))
        (self.dir / f"{stem}.key").chmod(0o600)

    def _serving(self, service_ip):
        key = _key()
        sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address(service_ip)),
                x509.DNSName("localhost")]
        sans += [x509.DNSName(n) for n in ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                           "kubernetes.default.svc.cluster.local")]
        cert = (_builder(_name("kube-apiserver"), self.ca_cert.subject, key.public_key())
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.ca_key, hashes.SHA256()))
        self._write("apiserver", cert, key)

    def client(self, stem, cn, org="system:masters"):
        """A client certificate; returns (cert_pem, key_pem)."""
        return issue_client(self.dir, stem, cn, org, self.ca_cert, self.ca_key)


def issue_client(directory, stem, cn, org="system:masters", ca_cert=None, ca_key=None):
    """A client certificate signed by the cluster CA in `directory`; writes <stem>.crt/key, returns the PEMs."""
    directory = Path(directory)
    if ca_cert is None:
        ca_cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    key = _key()
    cert = (_builder(_name(cn, org), ca_cert.subject, key.public_key())
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / f"{stem}.crt").write_bytes(_pem_cert(cert))
    (directory / f"{stem}.key").write_bytes(_pem_key(key))
    (directory / f"{stem}.key").chmod(0o600)
    return _pem_cert(cert), _pem_key(key)


def kubeconfig(context, server, ca_pem, user, cert_pem, key_pem):
    """A kubeconfig dict with everything embedded (istiod rejects file references in remote secrets)."""
    def b64(data):
        return base64.b64encode(data).decode()
    return {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "current-context": context,
    }
