"""The `changes` role's report as a run printed it, and the objects a run really wrote, from the API servers' audit
logs (`meshlab writes --objects`), in the same form: {cluster: set of "<action> <Kind> <namespace>/<name>"}.

What the admin identity wrote is taken object by object for the Python client's writes and by release for Helm's (the
release Secret `sh.helm.release.v1.<release>.v<N>` it writes), every other Helm write having to be an object of that
release's manifest. istioctl's writes (server-side apply of its manifest) are one `IstioOperator <ns>/<revision>`
entry, `install` when the run created the collection's install record ConfigMap, else `upgrade`."""
import json
import re

import yaml

from conftest import run

NS = "istio-system"
REPORT_TASK = "TASK [meshops.istio.changes : Report the objects this run changed"
HELM_RELEASE = re.compile(r"^sh\.helm\.release\.v1\.(?P<release>.+)\.v(?P<version>\d+)$")
KINDS = {"namespaces": "Namespace", "secrets": "Secret", "deployments": "Deployment", "gateways": "Gateway",
         "virtualservices": "VirtualService", "configmaps": "ConfigMap", "services": "Service",
         # ambient: the Gateway API bundle
         "customresourcedefinitions": "CustomResourceDefinition", "validatingadmissionpolicies": "ValidatingAdmissionPolicy",
         "validatingadmissionpolicybindings": "ValidatingAdmissionPolicyBinding"}
ISTIOCTL_RECORD = "meshops-istio-install"
VERBS = {"create": "create", "patch": "patch", "update": "patch", "delete": "delete"}


def report(stdout):
    """The `changes` role's summary, {cluster: set of descriptions}, as the run printed it."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(REPORT_TASK)), None)
    assert start is not None, "the run printed no change report:\n" + stdout[-4000:]
    block = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        block.append(line)
    data = yaml.safe_load("\n".join(block))["changes_summary"]
    return {cluster: set(objs) for cluster, objs in data.items()}


def helm_manifest(lab, ctx, release):
    """(resource plural, namespace, name) of every object of a release's manifest."""
    out = set()
    text = run("helm", "get", "manifest", release, "-n", NS, "--kube-context", ctx, env=lab.env).stdout
    for doc in yaml.safe_load_all(text):
        if doc:
            md = doc["metadata"]
            out.add((doc["kind"].lower() + "s", md.get("namespace", NS if doc["kind"] not in CLUSTER_SCOPED else ""),
                     md["name"]))
    return out


CLUSTER_SCOPED = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
                  "ValidatingWebhookConfiguration", "Namespace"}


def actual_objects(lab, writes, hosts):
    """(reported-style {cluster: set}, problems) from the audit records of one run."""
    out, problems, helm = {h: set() for h in hosts.values()}, [], {}
    for ctx, records in writes.items():
        host = hosts[ctx]
        releases, istioctl_wrote = set(), False
        for w in records:
            if not 200 <= (w["code"] or 0) < 300:
                problems.append(f"{host}: {w['verb']} {w['uri']} answered {w['code']}")
            if w["userAgent"].startswith("Helm/"):
                m = HELM_RELEASE.match(w["name"]) if w["resource"] == "secrets" else None
                if m:
                    releases.add((m["release"], "install" if m["version"] == "1" else "upgrade"))
                else:
                    helm.setdefault(ctx, set()).add((w["resource"], w["namespace"], w["name"]))
                continue
            if w["userAgent"].startswith("istioctl/"):
                istioctl_wrote = True
                continue
            if w["resource"] == "serviceaccounts" and w["subresource"] == "token":
                out[host].add(f"create TokenRequest {w['namespace']}/{w['name']}")
                continue
            kind = KINDS.get(w["resource"], w["resource"])
            # The apiserver records a Namespace's own name as its namespace, except on create.
            namespace = "" if w["resource"] == "namespaces" else w["namespace"]
            where = f"{namespace}/{w['name']}" if namespace else w["name"]
            out[host].add(f"{VERBS[w['verb']]} {kind} {where}")
        if istioctl_wrote:
            records_written = [w for w in records if w["resource"] == "configmaps" and w["name"].startswith(ISTIOCTL_RECORD)]
            name = records_written[0]["name"] if records_written else ISTIOCTL_RECORD
            revision = name[len(ISTIOCTL_RECORD) + 1:] or "default"
            created = any(w["verb"] == "create" for w in records_written)
            out[host].add(f"{'install' if created else 'upgrade'} IstioOperator {NS}/{revision}")
        for release, action in releases:
            out[host].add(f"{action} HelmRelease {NS}/{release}")
        rendered = set().union(*(helm_manifest(lab, ctx, r) for r, dummy in releases)) if releases else set()
        stray = helm.get(ctx, set()) - rendered
        if stray:
            problems.append(f"{host}: Helm wrote objects of no release it wrote: {sorted(stray)}")
        if any(a == "install" for dummy, a in releases) and not helm.get(ctx, set()) >= {
                o for r, a in releases if a == "install" for o in helm_manifest(lab, ctx, r)}:
            problems.append(f"{host}: a release was installed without all of its objects being created")
    return out, problems


def hosts_of(inventory):
    """{kube context: inventory host} of a lab inventory, primaries and remotes."""
    groups = inventory["all"]["children"]
    return {hv["kube_context"]: h for g in ("istio_primary", "istio_remote")
            for h, hv in ((groups.get(g) or {}).get("hosts") or {}).items()}


def writes_since(lab, mark):
    """Every write of the admin identity since mark, per context, with its object (`meshlab writes --objects`); exact
    as soon as the run has returned (see conftest.Lab.writes)."""
    return json.loads(lab.meshlab("writes", "--since", mark, "--objects"))
