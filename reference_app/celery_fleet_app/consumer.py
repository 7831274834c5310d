"""The worker's consumer without Celery's native delayed delivery declarations.

Celery 5.5+ adds a `DelayedDelivery` bootstep whenever a task queue is a
quorum queue. On every (re)connect it declares 29 exchanges and 28 queues and
makes 56 bindings plus two per task queue, and the worker consumes only once
they are done. Under Mnesia each binding waits for a silent broker to be
declared down (net_ticktime, about 60 s), so a reconnect after a broker fault
stalls for a minute. The celery_worker role declares exactly that topology at
deploy time (the collection's plugins/filter/celery_topology.py), so the step is left out.
Publishing ETA and countdown tasks is unaffected: `send_task` routes them
through the delay exchanges by itself.
"""

from typing import ClassVar

from celery.worker.consumer import Consumer as CeleryConsumer

DELAYED_DELIVERY_STEP = "celery.worker.consumer.delayed_delivery:DelayedDelivery"


class Consumer(CeleryConsumer):
    class Blueprint(CeleryConsumer.Blueprint):
        default_steps: ClassVar[list[str]] = [
            step for step in CeleryConsumer.Blueprint.default_steps if step != DELAYED_DELIVERY_STEP
        ]
