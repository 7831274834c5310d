"""Test helpers the Molecule scenarios share: hosts, publishing, accounting, packet captures."""
