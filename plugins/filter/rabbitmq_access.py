"""The cluster's users: whether they match what the role sets, and the definitions that make them match.

One `rabbitmqctl export_definitions` holds every user, its password hash,
tags and permissions, so a converged cluster is checked in one call. A user
that differs is written the same way, as definitions imported from a file:
its password reaches the broker as a salted hash, never on a command line
(community.rabbitmq.rabbitmq_user passes it to `rabbitmqctl add_user` and
`change_password` as an argument, readable in /proc/*/cmdline while they
run). The hash is RabbitMQ's: base64 of a 4-byte salt followed by
SHA-256(salt + password).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
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


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's SHA-256 password hash, with a fresh random salt unless one is given."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


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


def rabbitmq_users_import(definitions: Mapping[str, Any], users: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Definitions to import for the users that differ from the cluster's (`users`: user, password, tags,
    permissions as the in-sync check takes them), and the permissions on other vhosts to clear afterwards."""
    stale = [
        user
        for user in users
        if not rabbitmq_user_in_sync(
            definitions, user["user"], user["password"], user.get("tags", ()), user.get("permissions", ())
        )
    ]
    stale_names = {user["user"] for user in stale}
    wanted = {(user["user"], _permission(entry)[0]) for user in stale for entry in user.get("permissions", ())}
    return {
        "users": [
            {
                "name": user["user"],
                "password_hash": password_hash(user["password"]),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ",".join(user.get("tags", ())),
            }
            for user in stale
        ],
        "permissions": [
            dict(zip(("vhost", "configure", "write", "read"), _permission(entry), strict=True), user=user["user"])
            for user in stale
            for entry in user.get("permissions", ())
        ],
        # Import only adds: access the role does not grant must be taken away by name.
        "clear_permissions": [
            {"user": entry["user"], "vhost": entry["vhost"]}
            for entry in definitions.get("permissions", [])
            if entry.get("user") in stale_names and (entry["user"], entry["vhost"]) not in wanted
        ],
        "clear_topic_permissions": [
            {"user": entry["user"], "vhost": entry["vhost"]}
            for entry in definitions.get("topic_permissions", [])
            if entry.get("user") in stale_names
        ],
    }


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
            "rabbitmq_users_import": rabbitmq_users_import,
            "rabbitmq_user_names": rabbitmq_user_names,
            "rabbitmq_vhost_queue_type": rabbitmq_vhost_queue_type,
        }
