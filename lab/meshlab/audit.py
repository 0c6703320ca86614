"""Count the write requests the admin identity made, per cluster, from the apiservers' audit logs."""
import datetime
import json
from pathlib import Path

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def mark():
    """An opaque MARK meaning "from now on": the current UTC time, microseconds included."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(ts):
    # Audit timestamps are RFC 3339 with microseconds, e.g. 2026-11-21T17:30:00.123456Z.
    return datetime.datetime.strptime(ts.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


def writes(audit_log: Path, user: str, since=None, details=False):
    """Write requests by `user` received at or after `since` (a MARK); a count, or the list with details=True."""
    since_dt = _parse(since) if since else None
    found = []
    if not audit_log.exists():
        return found if details else 0
    with open(audit_log, encoding="utf-8") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            if ev.get("verb") not in WRITE_VERBS or ev.get("user", {}).get("username") != user:
                continue
            if since_dt and _parse(ev["requestReceivedTimestamp"]) < since_dt:
                continue
            ref = ev.get("objectRef") or {}
            # The object written (the apiserver fills the name from the body of a create), and by which client
            # (Helm and the Python client both act as the admin; the user agent tells them apart).
            found.append({"verb": ev["verb"], "uri": ev.get("requestURI"), "code": ev.get("responseStatus", {}).get("code"),
                          "resource": ref.get("resource", ""), "subresource": ref.get("subresource", ""),
                          "apiGroup": ref.get("apiGroup", ""), "namespace": ref.get("namespace", ""),
                          "name": ref.get("name", ""), "userAgent": ev.get("userAgent", "")})
    return found if details else len(found)
