# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""helm_current: whether kubernetes.core.helm would leave a deployed release as it is (see module_utils/helm_release)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.meshops.istio.plugins.module_utils.helm_release import is_current


def helm_current(values, release, chart):
    if values is not None and not isinstance(values, dict):
        raise AnsibleFilterError("helm_current: the values must be a dict, got %s" % type(values).__name__)
    if release is not None and not isinstance(release, dict):
        raise AnsibleFilterError("helm_current: release must be an entry of cluster_info's helm_releases or none")
    return is_current(values, release, chart if isinstance(chart, dict) else None)


class FilterModule(object):
    def filters(self):
        return {"helm_current": helm_current}
