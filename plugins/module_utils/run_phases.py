"""Whether this run installs packages, and why a host without them must be refused.

Every role installs its packages in the `install` phase, and everything after
it reads what those packages brought (rabbitmqctl's answers, the haproxy
group, supervisorctl). A run that skips the install phase, `--check` (nothing
is installed) or `--tags`/`--skip-tags` leaving `install` out, cannot tell
what would follow on a host that lacks them: it would fail half-way with an
error about some later command. Each role refuses such a host at the start
instead, with the reason and what to run.

One file for every role of the collection: the celery_fleet.fleet.debian_packages
action (plugins/action/debian_packages.py) reads what dpkg holds, and refuses
such a host before it changes anything.
"""

from __future__ import annotations

from collections.abc import Sequence

INSTALL_TAG = "install"
# Tags under which a task tagged `install` runs (ansible_run_tags holds "all" by default).
_RUNS_INSTALL = {"all", "tagged", INSTALL_TAG}


def install_phase_skipped(check_mode: bool, run_tags: Sequence[str], skip_tags: Sequence[str]) -> str:
    """Why this run installs nothing ('' when it installs): check mode, or the tags chosen."""
    if check_mode:
        return "check mode"
    if INSTALL_TAG in skip_tags:
        return f"--skip-tags {','.join(skip_tags)}"
    if run_tags and not _RUNS_INSTALL.intersection(run_tags):
        return f"--tags {','.join(run_tags)}"
    return ""


def unconverged_host_problem(
    missing: Sequence[str],
    host: str,
    check_mode: bool,
    run_tags: Sequence[str],
    skip_tags: Sequence[str],
) -> str:
    """The refusal for a host that lacks `missing` packages in a run that installs nothing; '' if none."""
    reason = install_phase_skipped(check_mode, list(run_tags), list(skip_tags))
    if not missing or not reason:
        return ""
    packages = f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
    if reason == "check mode":
        return (
            f"check mode needs a converged fleet: {packages} not installed on {host}, so what the run "
            "would do next cannot be predicted. Run the playbook without --check first."
        )
    return (
        f"{reason} leaves out the install phase, but {packages} not installed on {host}. "
        "Run the playbook without --tags/--skip-tags (or with --tags install) first."
    )


def missing_packages(status_lines: Sequence[str], packages: Sequence[str]) -> list[str]:
    """The packages not reported installed by `dpkg-query --showformat '${Package} ${db:Status-Status}\\n'`.

    dpkg-query prints no line for a package it has never seen, hence the names.
    """
    installed = {line.split()[0] for line in status_lines if line.split()[1:] == ["installed"]}
    return [name for name in packages if name not in installed]
