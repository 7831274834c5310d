"""How the rabbitmq role tells from one export whether a user needs the module at all."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from rabbitmq_access import password_matches, rabbitmq_user_in_sync, rabbitmq_vhost_queue_type

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
