"""Whether the cluster's users already match what the role sets, read from one `rabbitmqctl export_definitions`.

community.rabbitmq.rabbitmq_user starts rabbitmqctl five times per
user to find out (a second or more each, an Erlang VM every time). One export
holds every user, its password hash, tags and permissions, so a converged
cluster is checked in one call and the module runs only for a user that
differs. The password is checked the way RabbitMQ checks it: the hash is
base64 of a 4-byte salt followed by H(salt + password).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

_HASHES = {
    "rabbit_password_hashing_sha256": hashlib.sha256,
    "rabbit_password_hashing_sha512": hashlib.sha512,
    "rabbit_password_hashing_md5": hashlib.md5,
}
_SALT_BYTES = 4


def password_matches(user: Mapping[str, Any], password: str) -> bool:
    """True if `password` is the one the user's hash was made from; False if it is not or cannot be told."""
    algorithm = _HASHES.get(user.get("hashing_algorithm", "rabbit_password_hashing_sha256"))
    try:
        stored = base64.b64decode(user.get("password_hash", ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    if algorithm is None or len(stored) <= _SALT_BYTES:
        return False
    salt, digest = stored[:_SALT_BYTES], stored[_SALT_BYTES:]
    return hmac.compare_digest(algorithm(salt + password.encode()).digest(), digest)


def _tags(value: Any) -> set[str]:
    # RabbitMQ 3.8 exported tags as "a,b"; later releases as a list.
    if isinstance(value, str):
        return {tag for tag in value.split(",") if tag}
    return set(value or [])


def _permission(entry: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """A permission as (vhost, configure, write, read), from the module's keys or the export's."""
    return (
        entry["vhost"],
        entry.get("configure_priv", entry.get("configure", "")),
        entry.get("write_priv", entry.get("write", "")),
        entry.get("read_priv", entry.get("read", "")),
    )


def rabbitmq_user_in_sync(
    definitions: Mapping[str, Any],
    name: str,
    password: str,
    tags: Sequence[str] = (),
    permissions: Sequence[Mapping[str, Any]] = (),
) -> bool:
    """True if user `name` exists with this password, exactly these tags and permissions, and no topic permissions."""
    users = [user for user in definitions.get("users", []) if user.get("name") == name]
    if len(users) != 1 or not password_matches(users[0], password) or _tags(users[0].get("tags")) != set(tags):
        return False
    have = {_permission(entry) for entry in definitions.get("permissions", []) if entry.get("user") == name}
    topic = [entry for entry in definitions.get("topic_permissions", []) if entry.get("user") == name]
    return have == {_permission(entry) for entry in permissions} and not topic


def rabbitmq_user_names(definitions: Mapping[str, Any]) -> list[str]:
    return [user["name"] for user in definitions.get("users", [])]


def rabbitmq_vhost_queue_type(definitions: Mapping[str, Any], name: str) -> str:
    """The vhost's default queue type; "" if there is no such vhost, "classic" if it has none set."""
    for vhost in definitions.get("vhosts", []):
        if vhost.get("name") == name:
            metadata = vhost.get("metadata") or {}
            return vhost.get("default_queue_type") or metadata.get("default_queue_type") or "classic"
    return ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "rabbitmq_user_in_sync": rabbitmq_user_in_sync,
            "rabbitmq_user_names": rabbitmq_user_names,
            "rabbitmq_vhost_queue_type": rabbitmq_vhost_queue_type,
        }
