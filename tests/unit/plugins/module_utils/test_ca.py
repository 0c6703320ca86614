# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plug-in CA profile (Istio tools/certs) and the checks that decide when an intermediate is re-issued."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import pytest

from ansible_collections.meshops.istio.plugins.module_utils import ca

x509 = pytest.importorskip("cryptography.x509")


@pytest.fixture(scope="module")
def root():
    key = ca.new_key(2048)
    return ca.make_root(key, 3650), key


def test_root_profile(root):
    cert, dummy = root
    assert cert.subject.rfc4514_string() == "CN=Root CA,O=Istio"
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert cert.signature_hash_algorithm.name == "sha256"


def test_intermediate_profile_and_checks(root):
    rcert, rkey = root
    key = ca.new_key(2048)
    cert = ca.make_intermediate(key, rcert, rkey, "cluster1", "istio-system", 3650)
    assert cert.subject.rfc4514_string() == "L=cluster1,CN=Intermediate CA,O=Istio"
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sans == ["istiod.istio-system.svc"]
    assert ca.signed_by(cert, rcert)
    assert ca.intermediate_problem(cert, key, rcert, "cluster1", "istio-system") is None
    assert ca.intermediate_problem(cert, key, rcert, "cluster2", "istio-system") == "names cluster cluster1"
    assert "SAN" in ca.intermediate_problem(cert, key, rcert, "cluster1", "mesh-system")
    assert ca.intermediate_problem(cert, ca.new_key(2048), rcert, "cluster1", "istio-system") == "does not match its key"
    other_key = ca.new_key(2048)
    other_root = ca.make_root(other_key, 3650)
    assert ca.intermediate_problem(cert, key, other_root, "cluster1", "istio-system") == "not signed by the mesh root"
    short = ca.make_intermediate(key, rcert, rkey, "cluster1", "istio-system", 10)
    assert ca.intermediate_problem(short, key, rcert, "cluster1", "istio-system").startswith("expires on")


def test_files_are_private(tmp_path):
    path = str(tmp_path / "k.pem")
    ca.write_private(path, b"secret")
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    ca.write_public(str(tmp_path / "c.pem"), b"cert")
    assert (tmp_path / "c.pem").read_bytes() == b"cert"
    assert isinstance(ca.RENEW_BEFORE, datetime.timedelta)


def test_pem_certificates_fingerprint_is_openssls(root):
    from cryptography.hazmat.primitives import hashes
    cert, dummy = root
    fp, subject = ca.pem_certificates(ca.cert_pem(cert))[0]
    assert fp == cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert subject == "CN=Root CA,O=Istio"
    # A bundle of two roots (a rotation) lists both, in order; text around the blocks is ignored.
    other = ca.make_root(ca.new_key(2048), 1)
    bundle = b"# roots\n" + ca.cert_pem(cert) + ca.cert_pem(other)
    assert [f for f, s in ca.pem_certificates(bundle)] == [fp, other.fingerprint(hashes.SHA256()).hex(":").upper()]
    assert ca.describe_roots(ca.cert_pem(cert)) == "SHA256 %s (CN=Root CA,O=Istio)" % fp
    assert ca.describe_roots(b"") == "none"


def test_directory_lock_serialises_processes(tmp_path):
    # Two processes (one mesh_ca run per cluster) generating the root at once: the second waits for the first.
    import multiprocessing
    import time
    log = tmp_path / "log"

    def hold(tag):
        with ca.directory_lock(str(tmp_path)):
            with open(str(log), "a") as f:
                f.write("%s-in " % tag)
            time.sleep(0.3)
            with open(str(log), "a") as f:
                f.write("%s-out " % tag)

    procs = [multiprocessing.get_context("fork").Process(target=hold, args=(t,)) for t in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(10)
    events = log.read_text().split()
    assert len(events) == 4 and events[0][0] == events[1][0] and events[2][0] == events[3][0], events
    assert [e[2:] for e in events] == ["in", "out", "in", "out"], events


def test_directory_lock_holds_nothing_in_check_mode_or_without_directory(tmp_path):
    with ca.directory_lock(str(tmp_path / "missing")):
        pass
    with ca.directory_lock(str(tmp_path), check_mode=True):
        pass
    assert not (tmp_path / "missing").exists() and not (tmp_path / ".lock").exists()


def test_cacerts_digest_covers_every_file_and_its_name():
    files = dict((name, ("content of %s" % name).encode()) for name in ca.CACERTS_FILES)
    digest = ca.cacerts_digest(files)
    assert len(digest) == 64 and digest == ca.cacerts_digest(dict(files))
    # Any file changed, or two files swapped, is another digest; extra keys (ca-crl.pem) are not part of it.
    for name in ca.CACERTS_FILES:
        assert ca.cacerts_digest(dict(files, **{name: b"other"})) != digest
    swapped = dict(files, **{"ca-cert.pem": files["root-cert.pem"], "root-cert.pem": files["ca-cert.pem"]})
    assert ca.cacerts_digest(swapped) != digest
    assert ca.cacerts_digest(dict(files, **{"ca-crl.pem": b"crl"})) == digest
    # A missing or empty file: no digest, so the trust role runs the cacerts module.
    assert ca.cacerts_digest(dict(files, **{"ca-key.pem": b""})) == ""
    assert ca.cacerts_digest({k: v for k, v in files.items() if k != "cert-chain.pem"}) == ""
