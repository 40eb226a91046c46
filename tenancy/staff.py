"""Platform staff groups and the model permissions each holds. Later apps add their models here.

Working tickets in the admin (``tickets.admin_tickets``) needs "change" on tickets (fields and bulk actions) and "add"
on comments (replies, notes) and time entries; every change still goes through ``tickets.services``."""

from __future__ import annotations

from typing import Any

# group -> {app_label.model: actions}; actions from view/add/change/delete.
ALL = ("view", "add", "change", "delete")
# Working contract invoicing: contracts and their lines, invoices with their actions (approve, charge, send, void),
# and each organization's billing settings; invoices, credit notes and payments are never deleted.
INVOICING: dict[str, tuple[str, ...]] = {
    "billing.contract": ("view", "add", "change"),
    "billing.contractline": ALL,
    "billing.invoice": ("view", "change"),
    "billing.invoiceline": ("view",),
    "billing.creditnote": ("view",),
    "billing.paymentattempt": ("view",),
    "billing.billingsettings": ("view", "add", "change"),
}
STAFF_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "Technician": {
        "tickets.ticket": ("view", "change"),
        "tickets.comment": ("view", "add"),
        "tickets.timeentry": ("view", "add"),
        "tickets.cannedresponse": ("view", "add", "change"),
        "tickets.technician": ("view",),
        "tickets.workflow": ("view",),
        "tickets.workflowrun": ("view",),
        "tickets.businesscalendar": ("view",),
        "tenancy.organization": ("view",),
        "tenancy.partner": ("view",),
        "tenancy.membership": ("view",),
        "tenancy.user": ("view",),
        "sms.sendingnumber": ("view",),
        "sms.smsprice": ("view",),
        "sms.smssettings": ("view",),
        "sms.contact": ("view",),
        "sms.donotcontact": ("view",),
        "sms.template": ("view",),
        "sms.campaign": ("view",),
        "sms.consentevent": ("view",),
        "sms.sendjob": ("view",),
        "sms.inboundmessage": ("view",),
        "sms.shortlink": ("view",),
        "sms.click": ("view",),
        "ninjaone.alert": ("view",),
        "ninjaone.device": ("view",),
        "ninjaone.webhookevent": ("view",),
        "ninjaone.ninjaonesettings": ("view",),
    },
    "Sales": {
        "billing.subscription": ("view",),
        "billing.contract": ("view",),
        "billing.contractline": ("view",),
        "qualification.qualification": ("view", "change"),
        "calendly.booking": ("view",),
        "calendly.webhookevent": ("view",),
        "quotes.quote": ("view", "add", "change"),
        "quotes.plan": ("view",),
        "quotes.addon": ("view",),
        "tenancy.organization": ("view", "add", "change"),
        "tenancy.partner": ("view",),
        "tenancy.membership": ("view",),
        "tenancy.user": ("view",),
    },
    "Billing": {
        "billing.subscription": ("view",),
        "billing.subscriptionitem": ("view",),
        "billing.stripeevent": ("view", "change"),
        "billing.smscreditentry": ("view", "add"),
        **INVOICING,
        "quickbooks.qboconnection": ("view", "change"),
        "quickbooks.qbosync": ("view", "change"),
        "quotes.plan": ("view", "change"),
        "quotes.addon": ("view", "change"),
        "quotes.quote": ("view",),
        "qualification.qualification": ("view",),  # the questionnaire a quote was made from
        "tenancy.organization": ("view", "change"),
        "tenancy.partner": ("view",),
        "tenancy.user": ("view",),
        "ninjaone.device": ("view",),
        "ninjaone.ninjaonesettings": ("view",),
    },
    "Manager": {
        "tickets.ticket": ("view", "change"),
        "tickets.comment": ("view", "add"),
        "tickets.timeentry": ("view", "add"),
        "tickets.cannedresponse": ALL,
        "tickets.technician": ("view", "add", "change"),
        "tickets.workflow": ALL,
        "tickets.workflowrun": ("view",),
        "tickets.businesscalendar": ("view", "add", "change"),
        "tickets.slapolicy": ("view", "add", "change"),
        "billing.subscription": ("view",),
        "billing.subscriptionitem": ("view",),
        "billing.stripeevent": ("view", "change"),
        "billing.smscreditentry": ("view", "add"),
        **INVOICING,
        "quickbooks.qboconnection": ("view",),
        "quickbooks.qbosync": ("view",),
        "qualification.qualification": ("view", "change"),
        "calendly.booking": ("view",),
        "calendly.webhookevent": ("view",),
        "quotes.quote": ("view", "add", "change"),
        "quotes.plan": ("view", "add", "change"),
        "quotes.addon": ("view", "add", "change"),
        "tenancy.organization": ("view", "add", "change"),
        "tenancy.partner": ("view", "add", "change"),
        "tenancy.membership": ALL,
        "tenancy.partnermembership": ("view",),
        "tenancy.invitation": ("view",),
        "tenancy.user": ("view", "change"),
        "tenancy.auditevent": ("view",),
        "events.event": ("view",),
        "tenancy.ratepolicy": ("view", "add", "change"),
        "tenancy.featureflag": ("view",),
        "tenancy.scheduledreport": ("view",),
        "sms.sendingnumber": ("view", "add", "change"),
        "sms.smsprice": ("view", "add", "change"),
        "sms.smssettings": ("view", "add", "change"),
        "sms.contact": ("view", "change"),
        "sms.donotcontact": ("view", "add", "delete"),
        "sms.template": ("view", "add", "change"),
        "sms.campaign": ("view", "change"),
        "sms.consentevent": ("view",),
        "sms.sendjob": ("view",),
        "sms.inboundmessage": ("view",),
        "sms.shortlink": ("view",),
        "sms.click": ("view",),
        "ninjaone.alert": ("view",),
        "ninjaone.device": ("view",),
        "ninjaone.webhookevent": ("view",),
        "ninjaone.ninjaonesettings": ("view", "add", "change"),
    },
    "Admin": {
        "tickets.ticket": ("view", "change"),
        "tickets.comment": ("view", "add"),
        "tickets.timeentry": ("view", "add"),
        "tickets.ticketactivity": ("view",),
        "tickets.cannedresponse": ALL,
        "tickets.technician": ALL,
        "tickets.workflow": ALL,
        "tickets.workflowrun": ("view",),
        "tickets.businesscalendar": ALL,
        "tickets.slapolicy": ALL,
        "billing.subscription": ("view",),
        "billing.subscriptionitem": ("view",),
        "billing.stripeevent": ("view", "change"),
        "billing.smscreditentry": ("view", "add", "change"),
        "billing.contract": ALL,
        "billing.contractline": ALL,
        "billing.invoice": ("view", "change"),
        "billing.invoiceline": ("view",),
        "billing.creditnote": ("view",),
        "billing.paymentattempt": ("view",),
        "billing.billingsettings": ALL,
        "quickbooks.qboconnection": ("view", "change"),
        "quickbooks.qbosync": ("view", "change"),
        "qualification.qualification": ALL,
        "calendly.booking": ("view",),
        "calendly.webhookevent": ("view",),
        "quotes.quote": ALL,
        "quotes.plan": ALL,
        "quotes.addon": ALL,
        "tenancy.organization": ALL,
        "tenancy.partner": ALL,
        "tenancy.membership": ALL,
        "tenancy.partnermembership": ALL,
        "tenancy.invitation": ALL,
        "tenancy.user": ALL,
        "tenancy.apikey": ALL,
        "tenancy.auditevent": ("view",),
        "events.event": ("view",),
        "events.delivery": ("view", "change"),
        "tenancy.ratepolicy": ALL,
        "tenancy.featureflag": ALL,
        "tenancy.featureflagoverride": ALL,
        "tenancy.scheduledreport": ("view", "change", "delete"),
        "events.webhookendpoint": ("view", "change"),
        "events.webhookdelivery": ("view",),
        "events.webhookattempt": ("view",),
        "notifications.notice": ("view",),
        "notifications.notification": ("view",),
        "notifications.delivery": ("view",),
        "notifications.notificationpreference": ("view",),
        "notifications.slackwebhook": ("view",),
        "notifications.bulksend": ("view", "add", "change"),
        "sms.sendingnumber": ("view", "add", "change"),
        "sms.smsprice": ("view", "add", "change"),
        "sms.smssettings": ("view", "add", "change"),
        "sms.contact": ("view", "change"),
        "sms.donotcontact": ("view", "add", "delete"),
        "sms.template": ("view", "add", "change"),
        "sms.campaign": ("view", "change"),
        "sms.consentevent": ("view",),
        "sms.sendjob": ("view",),
        "sms.inboundmessage": ("view",),
        "sms.shortlink": ("view",),
        "sms.click": ("view",),
        "ninjaone.alert": ("view",),
        "ninjaone.device": ("view",),
        "ninjaone.webhookevent": ("view", "delete"),
        "ninjaone.ninjaonesettings": ("view", "add", "change"),
    },
}


def ensure_staff_groups(sender: Any = None, **kwargs: Any) -> None:
    """Create the staff groups and give each exactly its permissions (idempotent; runs after every migrate).

    ``post_migrate`` is sent once per app (also on every flush of a test database); the groups are set once, after
    the last app, when every app's permissions exist.
    """
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    migrated = [config for config in apps.get_app_configs() if config.models_module is not None]
    if sender is not None and migrated and sender is not migrated[-1]:
        return

    for group_name, grants in STAFF_GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        wanted: list[int] = []
        for model_label, actions in grants.items():
            app_label, model = model_label.split(".")
            codenames = [f"{action}_{model}" for action in actions]
            wanted.extend(
                Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames).values_list(
                    "pk", flat=True
                )
            )
        group.permissions.set(wanted)
