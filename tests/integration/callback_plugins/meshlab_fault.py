# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: when the first task whose name contains $MESHLAB_FAULT_TASK starts, kill the kube-apiserver
of lab cluster $MESHLAB_FAULT_CLUSTER (`meshlab stop-apiserver --kill`) before any host runs that task, and append
what it did as one JSON line to $MESHLAB_FAULT_LOG, then one line per failed task (host, task, msg, consumers).
Ansible calls this from its main process before it starts the task's workers, so the fault always lands at the same
point of the run: no race with the playbook."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: meshlab_fault
type: aggregate
short_description: kill a lab cluster's API server when a given task starts
description: Test tooling of meshops.istio; not part of the collection.
requirements: [the meshlab command on PATH, MESHLAB_FAULT_TASK, MESHLAB_FAULT_CLUSTER and MESHLAB_FAULT_LOG set]
"""

import json
import os
import subprocess
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "meshlab_fault"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.task = os.environ.get("MESHLAB_FAULT_TASK")
        self.cluster = os.environ.get("MESHLAB_FAULT_CLUSTER")
        self.log = os.environ.get("MESHLAB_FAULT_LOG")
        self.fired = False

    def v2_playbook_on_task_start(self, task, is_conditional):
        name = task.get_name()
        if self.fired or not self.task or self.task not in name:
            return
        self.fired = True
        proc = subprocess.run(["meshlab", "stop-apiserver", "--cluster", self.cluster, "--kill"], capture_output=True,
                              text=True, check=False)
        record = {"task": name, "cluster": int(self.cluster), "rc": proc.returncode, "time": time.time(),
                  "output": (proc.stdout + proc.stderr).strip()}
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not self.log:
            return
        r = result._result
        record = {"failed": True, "host": result._host.get_name(), "task": result._task.get_name(),
                  "msg": r.get("msg", ""), "consumers": r.get("consumers", [])}
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
