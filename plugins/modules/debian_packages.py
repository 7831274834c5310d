"""Documentation of celery_fleet.fleet.debian_packages; the action plugin of the same name does the work."""

DOCUMENTATION = r"""
module: debian_packages
short_description: Install Debian packages, asking dpkg first whether anything is missing
description:
  - Reads the packages' state with C(dpkg-query) (also in check mode) and runs C(ansible.builtin.apt) only for
    those missing, with the package lists refreshed when older than an hour.
  - A run that installs nothing (check mode, or C(--tags)/C(--skip-tags) that leave out C(install)) is refused on
    a host that lacks a package, before any change, with the reason and what to run.
options:
  names:
    description: The Debian packages the role needs.
    type: list
    elements: str
    required: true
  refuse_unconverged:
    description:
      - Refuse a host that lacks a package in a run that installs nothing. False installs them whenever the task
        runs (roles included by others under their own tags, such as pki and firewall).
    type: bool
    default: true
  install:
    description:
      - False only reads what is missing (and refuses, as above), for a role that installs later in its run.
    type: bool
    default: true
  versions:
    description:
      - The version to install a missing package at (its name to a Debian version); the others get the
        archive's candidate. An installed package is left as it is.
    type: dict
    default: {}
author: celery_fleet
"""

EXAMPLES = r"""
- name: Install HAProxy
  celery_fleet.fleet.debian_packages:
    names: [haproxy]
  tags: always
"""

RETURN = r"""
missing:
  description: The packages that were missing before this task (installed by it unless refused or in check mode).
  type: list
  elements: str
  returned: always
"""
