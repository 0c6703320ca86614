# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tag_problems: what is wrong with one cluster's revision tags (see module_utils/topology.tag_problems)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.meshops.istio.plugins.module_utils.topology import tag_problems as _tag_problems


def tag_problems(host, declared, live):
    if declared is not None and not isinstance(declared, dict):
        raise AnsibleFilterError("tag_problems: the declared tags must be a dict or none, got %s" % type(declared).__name__)
    if not isinstance(live, dict) or host not in live:
        raise AnsibleFilterError("tag_problems: live must map every host, %s included, to its tags" % (host,))
    return _tag_problems(host, declared, live)


class FilterModule(object):
    def filters(self):
        return {"tag_problems": tag_problems}
