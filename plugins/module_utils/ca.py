# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mesh's plug-in CA on the controller, following Istio's tools/certs conventions: one self-signed root
(O=Istio, CN=Root CA) and per cluster an intermediate (O=Istio, CN=Intermediate CA, L=<cluster>, pathlen 0,
SAN DNS:istiod.<namespace>.svc), RSA, SHA-256. Files are kept in a directory so that every run reuses them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import contextlib
import datetime
import fcntl
import hashlib
import os

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

# Renew an intermediate that has less than this left (its workloads' certificates are short-lived anyway).
RENEW_BEFORE = datetime.timedelta(days=30)


def _name(**attrs):
    oids = {"O": NameOID.ORGANIZATION_NAME, "CN": NameOID.COMMON_NAME, "L": NameOID.LOCALITY_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


def _usage():
    return x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True, data_encipherment=False,
                         key_agreement=False, key_cert_sign=True, crl_sign=False, encipher_only=False, decipher_only=False)


def new_key(size):
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _validity(days):
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)


def make_root(key, days):
    start, end = _validity(days)
    subject = _name(O="Istio", CN="Root CA")
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))


def make_intermediate(key, root_cert, root_key, cluster_id, namespace, days):
    start, end = _validity(days)
    return (x509.CertificateBuilder().subject_name(_name(O="Istio", CN="Intermediate CA", L=cluster_id))
            .issuer_name(root_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("istiod.%s.svc" % namespace)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))


# The files of Istio's plug-in CA Secret, in the order digests take them.
CACERTS_FILES = ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem")


def cacerts_digest(files):
    """SHA-256 over the four cacerts files ({name: bytes}), '' when one is missing. cluster_info computes it from the
    Secret and mesh_ca from the controller's files, so the trust role skips the cacerts module when they agree."""
    if not all(files.get(name) for name in CACERTS_FILES):
        return ""
    h = hashlib.sha256()
    for name in CACERTS_FILES:
        h.update(name.encode("ascii") + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def fingerprint(cert):
    return hashlib.sha256(cert_pem(cert)).hexdigest()


def pem_certificates(pem):
    """Each certificate of a PEM bundle as (SHA-256 fingerprint of its DER, as `openssl x509 -fingerprint -sha256`
    prints it, subject or ''). Pure: the fingerprint needs no cryptography library, the subject does."""
    if isinstance(pem, bytes):
        pem = pem.decode("ascii", "replace")
    out, body = [], None
    for line in pem.splitlines():
        line = line.strip()
        if line == "-----BEGIN CERTIFICATE-----":
            body = []
        elif line == "-----END CERTIFICATE-----" and body is not None:
            try:
                der = base64.b64decode("".join(body))
            except (ValueError, TypeError):
                der = b""
            digest = hashlib.sha256(der).hexdigest().upper()
            subject = ""
            if HAS_CRYPTOGRAPHY and der:
                try:
                    subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
                except ValueError:
                    subject = "unreadable certificate"
            out.append((":".join(digest[i:i + 2] for i in range(0, len(digest), 2)), subject))
            body = None
        elif body is not None:
            body.append(line)
    return out


def describe_roots(pem):
    """'SHA256 <fingerprint> (<subject>)' for each certificate of a root bundle, joined; 'none' when empty."""
    certs = pem_certificates(pem or b"")
    return "; ".join("SHA256 %s (%s)" % (fp, subject) if subject else "SHA256 %s" % fp for fp, subject in certs) or "none"


def signed_by(cert, issuer):
    try:
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return cert.issuer == issuer.subject


def intermediate_problem(cert, key, root, cluster_id, namespace):
    """Why an existing intermediate must be replaced, or None if it is fine."""
    not_after = cert.not_valid_after_utc if hasattr(cert, "not_valid_after_utc") else cert.not_valid_after.replace(
        tzinfo=datetime.timezone.utc)
    if not signed_by(cert, root):
        return "not signed by the mesh root"
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        return "does not match its key"
    if not_after - datetime.datetime.now(datetime.timezone.utc) < RENEW_BEFORE:
        return "expires on %s" % not_after.date()
    localities = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)]
    if localities != [cluster_id]:
        return "names cluster %s" % (localities or ["(none)"])[0]
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    if sans != ["istiod.%s.svc" % namespace]:
        return "has SAN %s instead of istiod.%s.svc" % (sans, namespace)
    return None


@contextlib.contextmanager
def directory_lock(directory, check_mode=False):
    """Hold an exclusive lock on directory (a .lock file in it) while generating files several processes may want;
    nothing is held in check mode or when the directory does not exist yet (then nothing can be written anyway)."""
    if check_mode or not os.path.isdir(directory):
        yield
        return
    fd = os.open(os.path.join(directory, ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_private(path, data):
    """Write a file readable by its owner only, atomically."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def write_public(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)
