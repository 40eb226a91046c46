from __future__ import annotations

from celery import shared_task

from events import services


@shared_task(acks_late=True)
def fan_out(event_id: str) -> None:
    for delivery_id in services.event_fan_out(event_id=event_id):
        run_delivery.delay(delivery_id)


@shared_task(acks_late=True)
def fan_out_many(event_ids: list[str]) -> None:
    """Fan out a batch job's events with one message (each event is still claimed and fanned out once)."""
    for event_id in event_ids:
        fan_out(event_id)


@shared_task(acks_late=True)
def relay() -> int:
    """Fan out the events committed since the last run (``events.services.relay_ring`` queues it)."""
    delivery_ids = services.events_relay()
    for delivery_id in delivery_ids:
        run_delivery.delay(delivery_id)
    return len(delivery_ids)


@shared_task(acks_late=True)
def run_delivery(delivery_id: int) -> str:
    return services.delivery_run(delivery_id=delivery_id)


@shared_task
def redeliver_stalled() -> int:
    event_ids, delivery_ids = services.stalled_work()
    for event_id in event_ids:
        fan_out.delay(event_id)
    for delivery_id in delivery_ids:
        run_delivery.delay(delivery_id)
    return len(event_ids) + len(delivery_ids)


@shared_task(acks_late=True)
def flush_endpoint(endpoint_id: str) -> int:
    """Send an endpoint's due webhook deliveries, oldest event first."""
    from events.webhooks import endpoint_flush

    return endpoint_flush(endpoint_id)


@shared_task(acks_late=True)
def send_ping(delivery_id: int) -> bool:
    """Send a test ping a person asked for on the endpoint's page (``events.webhooks.endpoint_ping``)."""
    from events.webhooks import ping_send

    return ping_send(delivery_id=delivery_id)


@shared_task
def webhooks_due() -> int:
    """Beat: flush every endpoint with a delivery due (a retry, or one whose worker died)."""
    from events.webhooks import due_endpoints

    endpoints = due_endpoints()
    for endpoint_id in endpoints:
        flush_endpoint.delay(endpoint_id)
    return len(endpoints)
