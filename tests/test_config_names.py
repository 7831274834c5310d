"""Names the roles write into configuration files and command lines: what passes and what is refused."""

from __future__ import annotations

from config_names import celery_worker_pool_problems, rabbitmq_plugin_problems


def pool(name: object = "default", queues: object = ("celery",)) -> dict[str, object]:
    return {"name": name, "queues": list(queues) if isinstance(queues, tuple) else queues, "concurrency": 2}


def test_the_roles_own_and_the_examples_names_pass() -> None:
    assert celery_worker_pool_problems([pool(), pool("reports", ("reports", "celery.delayed:1", "a-b_c@x"))]) == []
    assert rabbitmq_plugin_problems(["rabbitmq_prometheus", "rabbitmq_management"]) == []


def test_a_name_that_would_change_the_file_is_refused_naming_the_entry() -> None:
    problems = celery_worker_pool_problems([pool("default]\n[program:other"), pool("web", ("a,b", "c d", ""))])
    assert problems[0].startswith("celery_worker_pools[0].name: 'default]\\n[program:other' is not a valid name")
    assert [p.split(":")[0] for p in problems[1:]] == [
        "celery_worker_pools[1].queues[0]",
        "celery_worker_pools[1].queues[1]",
        "celery_worker_pools[1].queues[2]",
    ]


def test_reserved_queues_upper_case_pools_duplicates_and_empty_queue_lists() -> None:
    problems = celery_worker_pool_problems([pool("Big"), pool("x", ("amq.gen",)), pool("x", [])])
    assert any(p.startswith("celery_worker_pools[0].name: 'Big'") for p in problems)
    assert "celery_worker_pools[1].queues[0]: 'amq.gen' starts with 'amq.', which RabbitMQ reserves." in problems
    assert "celery_worker_pools[2].queues must be a non-empty list of queue names." in problems
    assert "celery_worker_pools: the name 'x' is used twice; each pool is its own program." in problems


def test_a_plugin_that_is_not_an_atom_is_refused() -> None:
    assert rabbitmq_plugin_problems(["rabbitmq_prometheus", "rabbitmq_shovel,evil", 5]) == [
        "rabbitmq_plugins[1]: 'rabbitmq_shovel,evil' is not a valid name (a plugin name: lower-case letters, digits "
        "and '_', e.g. rabbitmq_prometheus).",
        "rabbitmq_plugins[2]: 5 is not a valid name (a plugin name: lower-case letters, digits and '_', e.g. "
        "rabbitmq_prometheus).",
    ]
