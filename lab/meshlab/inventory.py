"""`meshlab inventory --model M`: a ready meshops.istio inventory for the running lab (one host per cluster)."""
import yaml

from . import paths, versions

MODELS = ("multi-primary", "multi-primary-multi-network", "primary-remote", "primary-remote-multi-network", "ambient",
          "mixed")


def render(lab, model, ca_dir=None, istio=None):
    state = lab.state()
    clusters = lab.clusters(state)
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; one of {', '.join(MODELS)}")
    multi_network = model.endswith("multi-network") or model == "ambient"
    remote_model = model.startswith("primary-remote")
    if remote_model and len(clusters) < 2:
        raise ValueError("primary-remote needs at least 2 clusters")
    if model == "mixed":
        return _document(lab, model, ca_dir, *_mixed(clusters), istio=istio)
    primary, remote = {}, {}
    for i, c in enumerate(clusters, start=1):
        host = {"kube_context": c.context, "istio_network": f"network{i}" if multi_network else "network1"}
        (remote if remote_model and i > 1 else primary)[f"cluster{i}"] = host
    if remote_model:
        for host in remote.values():
            host["istio_primary_cluster"] = "cluster1"
            if not multi_network:
                host["istio_network"] = "network1"
    return _document(lab, model, ca_dir, primary, remote, istio=istio)


def _mixed(clusters):
    """Two primaries on two networks, and a remote on the second network controlled by the second primary."""
    if len(clusters) != 3:
        raise ValueError("the mixed model needs exactly 3 clusters (meshlab up --clusters 3)")
    c1, c2, c3 = clusters
    primary = {"cluster1": {"kube_context": c1.context, "istio_network": "network1"},
               "cluster2": {"kube_context": c2.context, "istio_network": "network2"}}
    remote = {"cluster3": {"kube_context": c3.context, "istio_network": "network2", "istio_primary_cluster": "cluster2"}}
    return primary, remote


def _document(lab, model, ca_dir, primary, remote, istio=None):
    release = versions.istio_version(istio) if istio else None
    mesh_vars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "kubeconfig": str(lab.kubeconfig()),
        "istio_charts": str(paths.charts_dir(release)),
        "istio_helm_binary": str(paths.binary("helm")),
        "istio_istioctl_binary": str(paths.istio_binary("istioctl", release) if release else paths.binary("istioctl")),
        # The lab's API servers listen on 127.0.0.1, which the lab's istiods (outside the clusters) do reach.
        "istio_allow_loopback_api_server": True,
        "istio_mesh_id": "mesh1",
        # 2048-bit CA keys keep the lab fast; Istio's default (and this collection's) is 4096.
        "istio_ca_key_size": 2048,
    }
    if ca_dir:
        mesh_vars["istio_ca_dir"] = str(ca_dir)
    if release and release != versions.ISTIO:
        # A release's charts, stamped as Istio's release pipeline does: the inventory pins it as users do.
        mesh_vars["istio_version"] = release
    elif model == "ambient":
        mesh_vars["istio_version"] = "1.31.0"
    if model == "ambient":
        # The lab's Istio (1.31-dev) pins Gateway API v1.5.1; its standard CRDs come with the lab's build.
        mesh_vars["istio_gateway_api_version"] = "v" + versions.GATEWAY_API
        mesh_vars["istio_gateway_api_crds"] = str(paths.gateway_api_crds_dir() / "standard")
    children = {"istio_primary": {"hosts": primary}}
    if remote:
        children["istio_remote"] = {"hosts": remote}
    doc = {"all": {"vars": mesh_vars, "children": children}}
    return f"# meshops.istio inventory for the meshlab in {lab.home} (model {model})\n" + yaml.safe_dump(doc, sort_keys=False)
