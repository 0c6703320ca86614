# -*- coding: utf-8 -*-
# Copyright: meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The attributes every writing module of this collection has.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change and writes nothing.
    support: full
  action_group:
    description: Use C(group/meshops.istio.istio) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - meshops.istio.istio
"""

    READ_ONLY = r"""
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change and writes nothing.
    support: full
  action_group:
    description: Use C(group/meshops.istio.istio) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - meshops.istio.istio
"""
