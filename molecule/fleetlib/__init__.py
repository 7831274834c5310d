"""Test helpers the Molecule scenarios (and the unit tests and tools) share, each once; docs/testing.md lists them.

project, hosts, playbooks, waits, bounds, brokers, proxies, publishing, accounting, captures, inputs and
command_line. Nothing here imports a conftest: fixtures live in the conftest.py files and use these helpers.
"""
