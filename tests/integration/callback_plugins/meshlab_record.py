# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: for every playbook run, record which tasks changed on which host, whether it ran in check
mode, and how many writes the lab's admin identity made meanwhile (from `meshlab writes`), as one JSON line in
$MESHLAB_RECORD. The molecule scenarios compare these records (check run vs. real run, idempotence = 0 writes)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: meshlab_record
type: aggregate
short_description: record changed tasks and lab write counts per playbook run
description: Test tooling of meshops.istio; not part of the collection.
requirements: [the meshlab command on PATH, MESHLAB_RECORD set]
"""

import json
import os
import subprocess

from ansible.plugins.callback import CallbackBase


def _meshlab(*args):
    return subprocess.run(["meshlab", *args], check=True, capture_output=True, text=True).stdout.strip()


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "meshlab_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.path = os.environ.get("MESHLAB_RECORD")
        self.changed = []
        self.playbook = None
        self.mark = None

    def v2_playbook_on_start(self, playbook):
        self.playbook = os.path.basename(playbook._file_name)
        if self.path:
            self.mark = _meshlab("mark")

    def v2_runner_on_ok(self, result):
        if result._result.get("changed"):
            self.changed.append([result._host.get_name(), result._task.get_name()])

    def v2_playbook_on_stats(self, stats):
        if not self.path:
            return
        from ansible import context
        check = bool(context.CLIARGS.get("check"))
        writes = json.loads(_meshlab("writes", "--since", self.mark, "--json"))
        record = {"playbook": self.playbook, "check": check, "changed": sorted(self.changed), "writes": writes,
                  "failures": sum(stats.failures.values()), "unreachable": sum(stats.dark.values())}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
