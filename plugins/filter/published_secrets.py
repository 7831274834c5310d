"""Secrets this repository publishes, recognised so that no real fleet runs with them.

The example inventory's vault key is documented, and the lab's passwords are
in plain text: anyone can read them. A copy of either inventory pointed at
real hosts would run a cluster whose cookie and passwords the world knows. The
roles refuse these values unless the inventory says it is the throw-away lab
(`rabbitmq_allow_published_secrets`, `celery_worker_allow_published_secrets`).

Only SHA-256 digests are kept here: the plain values live once, in the
inventories, and tests/test_published_secrets.py checks that every one of
them is listed.
"""

from __future__ import annotations

import hashlib
from typing import Any

PUBLISHED_SHA256 = frozenset(
    {
        "c24927479a4aac3eb112abe72ee181bf64731f270baf41d2bb7d12e50b343658",
        "2495246078ebb2ad41f769ae982e80d096cc0dbf012aedb061a5f3c66a25ceaa",
        "7c4545a6db79117afae7ca00f3b86c6d110d7ca1bbd687292af95873dd8f4df3",
        "ef23058c0eead98158568eba9c608a27acede0f649e915273c8e90819a12a142",
        "17200fb6a143946dca3ffd6f38876d1baf5d293fed33cbc0b11981765a0f99ae",
    }
)


def published_secret(value: Any) -> bool:
    """True if `value` is one of the secrets this repository publishes."""
    return isinstance(value, str) and hashlib.sha256(value.encode()).hexdigest() in PUBLISHED_SHA256


def published_secret_names(values: dict[str, Any]) -> list[str]:
    """The names (variables) whose values are published secrets: what a refusal names, never the value."""
    return [name for name, value in values.items() if published_secret(value)]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"published_secret_names": published_secret_names}
