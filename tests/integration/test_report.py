"""playbooks/report.yml on a converged two-network mesh: read-only (0 writes), the JSON matches the lab, the picture
holds every cluster, network, gateway and remote secret, and a real headless browser draws it."""
import base64
import json
import shutil
import struct
import subprocess
import time
import zlib

import pytest
import yaml

from conftest import run

WIDTH, HEIGHT = 1280, 900
PRIMARY_FILL = (0xdb, 0xe9, 0xff)   # report.COLOURS["primary"]
NETWORK_FILL = (0xf4, 0xf6, 0xf8)   # report.COLOURS["network"]


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit non-interlaced RGB/RGBA PNG, as Chromium writes them."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, dummy, dummy, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            bpp = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xff
            elif f == 2:
                line[i] = (line[i] + b) & 0xff
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


@pytest.fixture(scope="module")
def mesh(lab, tmp_path_factory):
    """The lab converged as a two-network multi-primary mesh with expiring (TokenRequest) tokens."""
    tmp = tmp_path_factory.mktemp("report")
    inv_path = tmp / "inventory.yml"
    inv = lab.inventory("multi-primary-multi-network", inv_path, tmp / "ca")
    inv["all"]["vars"].update(istio_token_type="token_request")
    inv_path.write_text(yaml.safe_dump(inv))
    lab.playbook("multi-primary.yml", inv_path, check=True)
    return inv_path, tmp


def run_report(lab, inv_path, dest):
    mark = lab.mark()
    proc = lab.playbook("report.yml", inv_path, "-e", f"istio_report_dir={dest}", check=True)
    return proc, lab.writes(mark)


def test_report_is_read_only_and_matches_the_lab(lab, mesh):
    inv_path, tmp = mesh
    proc, writes = run_report(lab, inv_path, tmp / "out")
    assert writes and all(n == 0 for n in writes.values()), f"the report wrote to a cluster: {writes}"
    data = json.loads((tmp / "out" / "mesh-report.json").read_text())
    assert data["problems"] == [], data["problems"]
    assert data["networks"] == {"network1": ["cluster1"], "network2": ["cluster2"]}
    status = json.loads(lab.meshlab("status", "--json"))
    servers = sorted(run("kubectl", "config", "view", "--minify", "--context", ctx, "-o",
                         "jsonpath={.clusters[0].cluster.server}", env=lab.env).stdout for ctx in lab.contexts())
    assert sorted(c["api_server"] for c in data["clusters"]) == servers
    for c, ctx, other in ((data["clusters"][0], lab.contexts()[0], "cluster2"), (data["clusters"][1], lab.contexts()[1], "cluster1")):
        svc = json.loads(run("kubectl", "--context", ctx, "-n", "istio-system", "get", "svc", "istio-eastwestgateway",
                             "-o", "json", env=lab.env).stdout)
        assert c["eastwest_gateway"]["address"] == svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        pods = run("kubectl", "--context", ctx, "-n", "istio-system", "get", "pods", "-l", "app=istiod", "-o",
                   "jsonpath={.items[*].metadata.name}", env=lab.env).stdout.split()
        assert [v["pod"] for v in c["istiods"]] == pods
        assert {r["id"]: r["status"] for r in c["istiods"][0]["clusters"]} == {c["cluster_id"]: "synced", other: "synced"}
        # the expiry is the one of the token the cluster really holds (TokenRequest, 30 days by default)
        held = c["secrets_held"]
        assert [(s["cluster_id"], s["token_type"], s["sync"]) for s in held] == [(other, "token_request", "synced")]
        secret = json.loads(run("kubectl", "--context", ctx, "-n", "istio-system", "get", "secret",
                                f"istio-remote-secret-{other}", "-o", "json", env=lab.env).stdout)
        token = yaml.safe_load(base64.b64decode(secret["data"][other]))["users"][0]["user"]["token"]
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert held[0]["expires"] == claims["exp"]
        assert 29 * 86400 < held[0]["expires"] - time.time() <= 30 * 86400
        # never a token in any output
        assert token not in proc.stdout + proc.stderr
        assert token not in "".join(p.read_text() for p in (tmp / "out").iterdir())
    assert len(status["clusters"]) == 2


def test_picture_in_a_real_browser(lab, mesh):
    inv_path, tmp = mesh
    out = tmp / "out"
    if not (out / "index.html").exists():
        run_report(lab, inv_path, out)
    svg, page = (out / "topology.svg").read_text(), (out / "index.html").read_text()
    data = json.loads((out / "mesh-report.json").read_text())
    for c in data["clusters"]:
        gw = c["eastwest_gateway"]
        for text in (c["cluster_id"], f"network {c['network']}", f"{gw['address']}:{gw['port']}", f'id="cluster-{c["cluster_id"]}"'):
            assert text in svg and text in page, text
        other = "cluster2" if c["cluster_id"] == "cluster1" else "cluster1"
        assert f"{c['cluster_id']} holds a secret for {other} (synced, token token_request)" in svg
        assert f"secret for {other}: token expires " in svg
    browser = chromium()
    if not browser:
        pytest.skip("chromium is not installed (apt-get install -y chromium; `make test` installs it when run as root)")
    shot = tmp / "report.png"
    # Every host name resolves to nothing and background services are off: the browser dials nothing.
    run(browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
        "--disable-domain-reliability", "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp / 'chromium'}",
        f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}", f"file://{out / 'index.html'}", timeout=120)
    width, height, rows = read_png(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    colours = {}
    for row in rows:
        for px in row:
            colours[px] = colours.get(px, 0) + 1
    white = colours.get((255, 255, 255), 0)
    assert white < 0.9 * width * height, "the page is (nearly) blank"
    assert len(colours) > 50, f"only {len(colours)} distinct colours"
    # Two primary boxes (at least 350x100 px each) and the network groups around them are really painted.
    assert colours.get(PRIMARY_FILL, 0) > 2 * 300 * 60, colours.get(PRIMARY_FILL, 0)
    assert colours.get(NETWORK_FILL, 0) > 2 * 20 * 100, colours.get(NETWORK_FILL, 0)

    # Green arrows and status text (synced): many pixels close to the "synced" colour, few close to "problem".
    def near(px, ref, tol=40):
        return all(abs(a - b) <= tol for a, b in zip(px, ref))

    green = sum(n for px, n in colours.items() if near(px, (0x2e, 0x9d, 0x4c)))
    red = sum(n for px, n in colours.items() if near(px, (0xd0, 0x34, 0x2c), 25))
    assert green > 300, green
    # red appears only in the legend's "not synced" sample arrow
    assert red < 200, red


def test_legacy_tokens_are_reported_as_not_expiring(lab, mesh):
    """A secret made by istioctl (legacy token Secret) replaces one the collection made: the report says it does
    not expire, while the other keeps its expiry."""
    inv_path, tmp = mesh
    c1, c2 = lab.contexts()
    made = run("istioctl", "create-remote-secret", f"--context={c2}", "--name=cluster2", env=lab.env).stdout
    subprocess.run(["kubectl", "--context", c1, "apply", "-f", "-"], input=made, env=lab.env, check=True,
                   capture_output=True, text=True)
    run_report(lab, inv_path, tmp / "out2")
    data = json.loads((tmp / "out2" / "mesh-report.json").read_text())
    held = {c["cluster_id"]: c["secrets_held"][0] for c in data["clusters"]}
    assert held["cluster1"]["token_type"] == "legacy" and held["cluster1"]["expires"] is None
    assert held["cluster1"]["token"] == "does not expire (legacy token Secret)"
    assert held["cluster2"]["token_type"] == "token_request" and held["cluster2"]["expires"]
    assert "token never expires (legacy)" in (tmp / "out2" / "topology.svg").read_text()
