"""How the rabbitmq role tells from one export whether a user differs, and the definitions that set it."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from rabbitmq_access import (
    password_hash,
    password_matches,
    rabbitmq_user_in_sync,
    rabbitmq_users_import,
    rabbitmq_vhost_queue_type,
)

# Taken from a 4.0.5 node's export: user "celery" with password "lab-app-password".
EXPORTED_HASH = "+NyCaWZb/elyr80PTZs1zWkJtr2ClFfV8v3kwFfMq9A2z0/s"
APP_PERMISSIONS = [{"vhost": "celery", "configure_priv": ".*", "write_priv": ".*", "read_priv": ".*"}]


def hashed(password: str, algorithm: str = "sha256") -> str:
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.new(algorithm, salt + password.encode()).digest()).decode()


def export(tags: Any = (), password_hash: str = EXPORTED_HASH, **extra: Any) -> dict[str, Any]:
    user = {"name": "celery", "password_hash": password_hash, "tags": list(tags) if not isinstance(tags, str) else tags,
            "hashing_algorithm": "rabbit_password_hashing_sha256", "limits": {}}  # fmt: skip
    permissions = [{"user": "celery", "vhost": "celery", "configure": ".*", "write": ".*", "read": ".*"}]
    return {"users": [user], "permissions": permissions, "topic_permissions": []} | extra


def test_a_real_exported_hash_is_checked_as_rabbitmq_does() -> None:
    assert password_matches({"password_hash": EXPORTED_HASH}, "lab-app-password")
    assert not password_matches({"password_hash": EXPORTED_HASH}, "lab-app-passwore")


def test_sha512_hashes_and_unreadable_ones() -> None:
    user = {"password_hash": hashed("s3cret", "sha512"), "hashing_algorithm": "rabbit_password_hashing_sha512"}
    assert password_matches(user, "s3cret")
    assert not password_matches({"password_hash": "not base64!"}, "s3cret")
    assert not password_matches({"password_hash": hashed("s3cret"), "hashing_algorithm": "something_new"}, "s3cret")
    assert not password_matches({}, "")


def test_a_converged_user_needs_nothing() -> None:
    assert rabbitmq_user_in_sync(export(), "celery", "lab-app-password", [], APP_PERMISSIONS)


def test_every_difference_sends_the_user_to_the_module() -> None:
    assert not rabbitmq_user_in_sync(export(), "celery", "rotated-password", [], APP_PERMISSIONS)
    assert not rabbitmq_user_in_sync(export(), "other", "lab-app-password", [], APP_PERMISSIONS)
    assert not rabbitmq_user_in_sync(export(tags=["monitoring"]), "celery", "lab-app-password", [], APP_PERMISSIONS)
    narrower = [APP_PERMISSIONS[0] | {"configure_priv": "^$"}]
    assert not rabbitmq_user_in_sync(export(), "celery", "lab-app-password", [], narrower)
    topic = export(topic_permissions=[{"user": "celery", "vhost": "celery", "exchange": "x", "write": ".*"}])
    assert not rabbitmq_user_in_sync(topic, "celery", "lab-app-password", [], APP_PERMISSIONS)


def test_tags_as_rabbitmq_38_exported_them() -> None:
    definitions = export(tags="monitoring")
    assert rabbitmq_user_in_sync(definitions, "celery", "lab-app-password", ["monitoring"], APP_PERMISSIONS)


def test_vhost_queue_type_from_either_place() -> None:
    vhosts = [
        {"name": "a", "default_queue_type": "quorum"},
        {"name": "b", "metadata": {"default_queue_type": "stream"}},
        {"name": "c", "metadata": {}},
    ]
    found = [rabbitmq_vhost_queue_type({"vhosts": vhosts}, name) for name in "abcd"]
    assert found == ["quorum", "stream", "classic", ""]


USERS = [
    {"user": "celery", "password": "lab-app-password", "tags": [], "permissions": APP_PERMISSIONS},
    {"user": "monitor", "password": "m0n", "tags": ["monitoring"],
     "permissions": [{"vhost": "celery", "configure_priv": "^$", "write_priv": "^$", "read_priv": ".*"}]},
]  # fmt: skip


def test_our_hash_is_the_one_rabbitmq_checks() -> None:
    assert password_matches({"password_hash": password_hash("s3cret")}, "s3cret")
    # A fresh salt each time: two hashes of one password differ.
    assert password_hash("s3cret") != password_hash("s3cret")
    salt = base64.b64decode(EXPORTED_HASH)[:4]
    assert password_hash("lab-app-password", salt) == EXPORTED_HASH


def test_only_the_users_that_differ_are_imported() -> None:
    definitions = rabbitmq_users_import(export(), USERS)
    assert [user["name"] for user in definitions["users"]] == ["monitor"]
    monitor = definitions["users"][0]
    assert monitor["tags"] == "monitoring"
    assert password_matches(monitor, "m0n")
    assert "m0n" not in str(definitions)
    assert definitions["permissions"] == [
        {"user": "monitor", "vhost": "celery", "configure": "^$", "write": "^$", "read": ".*"}
    ]
    # What the import would leave the cluster with is in sync.
    after = {"users": definitions["users"], "permissions": definitions["permissions"], "topic_permissions": []}
    assert rabbitmq_user_in_sync(after, "monitor", "m0n", ["monitoring"], USERS[1]["permissions"])


def test_a_rotated_password_is_imported_as_a_hash_of_the_new_one() -> None:
    definitions = rabbitmq_users_import(export(), [USERS[0] | {"password": "rotated"}])
    assert password_matches(definitions["users"][0], "rotated")
    assert definitions["clear_permissions"] == []
    assert definitions["clear_topic_permissions"] == []


def test_access_the_role_does_not_grant_is_cleared_by_name() -> None:
    extra = {"user": "celery", "vhost": "other", "configure": ".*", "write": ".*", "read": ".*"}
    topic = {"user": "celery", "vhost": "celery", "exchange": "x", "write": ".*", "read": ".*"}
    cluster = export()
    cluster["permissions"].append(extra)
    cluster["topic_permissions"] = [topic]
    definitions = rabbitmq_users_import(cluster, USERS[:1])
    assert definitions["clear_permissions"] == [{"user": "celery", "vhost": "other"}]
    assert definitions["clear_topic_permissions"] == [{"user": "celery", "vhost": "celery"}]


def test_a_converged_cluster_imports_nothing() -> None:
    cluster = export()
    cluster["users"].append({"name": "monitor", "password_hash": password_hash("m0n"), "tags": ["monitoring"]})
    cluster["permissions"].append(
        {"user": "monitor", "vhost": "celery", "configure": "^$", "write": "^$", "read": ".*"}
    )
    assert rabbitmq_users_import(cluster, USERS)["users"] == []
