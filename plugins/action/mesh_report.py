# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side: write the mesh report (JSON, SVG, HTML) from what the read-only modules returned per cluster."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase

from ansible_collections.meshops.istio.plugins.module_utils import report


def _write(path, text):
    """Write text to path unless it already holds it; True when written."""
    data = to_bytes(text)
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    with open(path, "wb") as f:
        f.write(data)
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("clusters", "dest", "plan"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        plan = args.get("plan") or task_vars.get("meshops_plan")
        if not plan:
            raise AnsibleActionFail("mesh_report needs the mesh plan: run meshops.istio.mesh_plan first or pass plan")
        clusters = args.get("clusters") or {}
        if not isinstance(clusters, dict):
            raise AnsibleActionFail("clusters: expected a dict of inventory host -> gathered results, got %s" % type(clusters).__name__)
        dest = os.path.abspath(os.path.expanduser(str(args.get("dest") or "mesh-report")))
        if not report.HAS_DRAWSVG:
            raise AnsibleActionFail("the mesh report draws its picture with the Python package drawsvg, which is not "
                                    "installed on the controller (pip install drawsvg)")
        data = report.build_report(plan, clusters, int(time.time()))
        svg = report.render_svg(data)
        files = {"mesh-report.json": json.dumps(data, indent=2, sort_keys=True) + "\n",
                 "topology.svg": svg, "index.html": report.render_html(data, svg)}
        paths = dict((name.split(".")[0].replace("-", "_"), os.path.join(dest, name)) for name in files)
        written = []
        if not self._task.check_mode:
            try:
                if not os.path.isdir(dest):
                    os.makedirs(dest)
                written = [name for name, text in files.items() if _write(os.path.join(dest, name), text)]
            except (IOError, OSError) as e:
                raise AnsibleActionFail("cannot write the report into %s: %s" % (dest, e))
        for p in data["problems"]:
            self._display.warning("mesh report: %s" % p)
        # The page carries a generation time, so a new report is always a change on the controller (never on a cluster).
        result.update(changed=bool(written) or self._task.check_mode, dest=dest, files=paths, problems=data["problems"],
                      msg="mesh %s: %d clusters, %d remote secrets, %d problem(s); report in %s"
                          % (data["mesh_id"], len(data["clusters"]), len(data["secrets"]), len(data["problems"]),
                             paths["index"]))
        return result
