from celery import shared_task

from tickets.escalation import sla_check


@shared_task
def check_sla_breaches() -> int:
    """Beat: the SLA breach check. Safe to run twice at once (rows are claimed, notices are unique)."""
    return len(sla_check().actions)
