"""The version matrix's checks, shared by its test files: one flow per (model, release) on a fresh real lab, Istio's
released charts and binaries of that version (meshlab inventory --istio pins istio_version, istio_charts, istioctl).
Each flow: converge from the empty lab with the verify role's traffic check (every cluster answered by v1 and v2),
a re-run that writes nothing and says why it skips the traffic check, playbooks/verify.yml alone (traffic again),
uninstall back to the pre-install object set."""
import contextlib

import cluster_snapshot
import traffic
from conftest import _lab

PLAYBOOKS = {"multi-primary": "multi-primary.yml", "multi-primary-multi-network": "multi-primary.yml",
             "primary-remote": "primary-remote.yml", "primary-remote-multi-network": "primary-remote.yml",
             "mixed": "primary-remote.yml"}


def run_flow(tmp_path_factory, model, release, mesh_vars=None):
    clusters = 3 if model == "mixed" else 2
    with contextlib.contextmanager(_lab)(tmp_path_factory, clusters, "real") as lab:
        out = traffic.flow(lab, model, release, tmp_path_factory.mktemp("flow"), PLAYBOOKS[model], mesh_vars)
        out["contexts"] = lab.contexts()
    print("\n" + traffic.figures(model + "".join(" %s=%s" % kv for kv in sorted((mesh_vars or {}).items())), release, out))
    return out


def check_flow(out):
    converge = traffic.verify_answers(out["converge"]["proc"].stdout)
    # Every cluster's requests answered by both versions, in the converge and in verify.yml alone.
    assert len(converge) == len(out["contexts"]), converge
    for step in ("converge", "verify"):
        answers = traffic.verify_answers(out[step]["proc"].stdout)
        assert answers.keys() == converge.keys() and all(set(v) == {"v1", "v2"} for v in answers.values()), (step, answers)
    assert set(out["rerun"]["writes"].values()) == {0}, out["rerun"]["writes"]
    assert out["rerun"]["changed"] == [], out["rerun"]["changed"]
    assert "Traffic check SKIPPED: this run changed nothing in the mesh" in out["rerun"]["proc"].stdout
    assert cluster_snapshot.compare(out["before"], out["after"]) == {}
