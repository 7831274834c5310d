"""Secrets in the tests: vars files encrypted as users keep them, and whether a run's output shows any."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import yaml

from fleetlib.playbooks import run_ansible


class Vault(NamedTuple):
    """An encrypted vars file and the file holding its password."""

    vars_file: Path
    password_file: Path


def vault_file(directory: Path, password: str, content: dict[str, str]) -> Vault:
    """A vars file encrypted with ansible-vault, and its password's file, in `directory`, as users keep secrets."""
    password_file = directory / "vault-password"
    password_file.write_text(password)
    vars_file = directory / "vault.yml"
    vars_file.write_text(yaml.safe_dump(content))
    encrypted = run_ansible("ansible-vault", "encrypt", "--vault-password-file", str(password_file), str(vars_file))
    assert encrypted.returncode == 0, encrypted.stderr
    assert not any(value in vars_file.read_text() for value in content.values())
    return Vault(vars_file, password_file)


def leaked(output: str, secret_values: dict[str, str]) -> list[str]:
    """Which secrets appear in the output (their names only: the test must not print them either)."""
    return [name for name, value in secret_values.items() if value in output]


def redacted(output: str, secret_values: dict[str, str]) -> str:
    """The output with each secret replaced by its name, for an assertion's message."""
    for name, value in secret_values.items():
        output = output.replace(value, f"<{name}>")
    return output


def private_key_lines(name: str, pem: str) -> dict[str, str]:
    """A PEM private key as secret values: each full base64 line of its body, which output would show verbatim
    (JSON escapes the line breaks between them, not the lines)."""
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return {f"{name}, line {number}": line for number, line in enumerate(body, 1) if len(line) >= 40}
