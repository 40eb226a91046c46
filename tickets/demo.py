"""Service-desk demo data for ``manage.py seed_demo``: technicians (the demo staff, with skills and shifts), canned
responses, and tickets for each demo organization in every status and every SLA state. Idempotent: a ticket is
known by its organization and subject, so a second run creates nothing; technicians and canned responses converge.

Tickets are written through the services, back-dated with their ``now`` arguments, so numbers, routing, activity and
clocks are what real use would have left. Each story is placed in business time: a ticket meant to be at risk now
was opened so that, on its own calendar, most of its resolution target has passed by the time the seed runs,
whatever the day or hour (its start is found by bisection on ``sla.business_time_between``). Finally each ticket's
clocks are read again at the real now, as the breach check would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from tenancy.models import Organization, User
from tickets import sla
from tickets.clocks import SLA_FIELDS, calendar_of, clocks_refresh, targets_apply
from tickets.models import BusinessCalendar, CannedResponse, Channel, ClockState, Technician, Ticket, TicketStatus
from tickets.services import (
    comment_add,
    satisfaction_record,
    ticket_assign,
    ticket_create,
    ticket_set_status,
    time_entry_add,
)

DAY_SHIFT = "Service desk day shift (Sydney)"
ON_CALL = "On call 24x7"
TECHNICIANS = [
    # demo staff email (tenancy.demo), skills, shift
    ("technician@keel.test", ["network", "windows", "m365"], DAY_SHIFT),
    ("manager@keel.test", ["security", "backup", "network"], DAY_SHIFT),
    ("admin@keel.test", ["network", "windows", "m365", "security", "backup"], ON_CALL),
]
CANNED = [
    ("Looking into it", "Thanks for letting us know. A technician is looking into this now and will update you here."),
    ("Need more detail", "Could you tell us when this started, who is affected and send a screenshot of any error?"),
    ("Restart first", "Please restart the device and let us know whether the problem is still there."),
    ("Resolved, reply to reopen", "We believe this is fixed. If it is not, reply to this ticket and it reopens."),
    ("Remote session", "We would like to connect remotely. Is now a good time? Please keep the device switched on."),
]


@dataclass(frozen=True)
class Step:
    """Something that happened to a story's ticket, ``fraction`` of one of its targets after it was opened."""

    clock: str  # "first" or "resolution"
    fraction: float
    kind: str  # reply, note, customer, time, status
    value: str = ""
    minutes: int = 0


@dataclass(frozen=True)
class Recipe:
    """How far into its clocks a story's ticket is now (``age``, in the same terms as a step), and its history."""

    age: tuple[str, float]
    steps: tuple[Step, ...] = ()
    rating: int = 0


R = "resolution"
RISK = -1.0  # as a fraction: halfway between the at-risk mark and the target, whatever the policy's ratio
RECIPES: dict[str, Recipe] = {
    # NEW, nobody can take it (a skill no technician has), well within its targets: on track, unassigned.
    "new_ok": Recipe(age=("first", 0.3)),
    # NEW, unanswered past the first-response target: breached (the internal note does not count as an answer).
    "new_breached": Recipe(age=("first", 1.5), steps=(Step("first", 0.5, "note"),)),
    # OPEN, answered in time, most of the resolution target used: at risk.
    "open_at_risk": Recipe(
        age=(R, RISK),
        steps=(Step("first", 0.3, "reply"), Step(R, 0.3, "customer"), Step(R, 0.5, "time", minutes=45),
               Step(R, 0.6, "note")),
    ),
    # Waiting on the customer: the resolution clock is paused.
    "pending": Recipe(
        age=(R, 0.5), steps=(Step("first", 0.2, "reply"), Step("first", 0.2, "status", TicketStatus.PENDING_CUSTOMER))
    ),
    # On hold for a vendor: paused too.
    "on_hold": Recipe(
        age=(R, 0.6),
        steps=(Step("first", 0.3, "reply"), Step(R, 0.15, "time", minutes=30), Step(R, 0.2, "note"),
               Step(R, 0.2, "status", TicketStatus.ON_HOLD)),
    ),
    # Resolved within both targets (met), rated 5.
    "resolved_met": Recipe(
        age=(R, 1.5),
        steps=(Step("first", 0.25, "reply"), Step(R, 0.3, "customer"), Step(R, 0.4, "time", minutes=20),
               Step(R, 0.5, "status", TicketStatus.RESOLVED)),
        rating=5,
    ),
    # Closed, both targets met, rated 4.
    "closed_met": Recipe(
        age=(R, 2.0),
        steps=(Step("first", 0.5, "reply"), Step(R, 0.3, "time", minutes=15),
               Step(R, 0.6, "status", TicketStatus.RESOLVED), Step(R, 0.9, "status", TicketStatus.CLOSED)),
        rating=4,
    ),
    # Closed late: the first response and the resolution were both breached, rated 2.
    "closed_breached": Recipe(
        age=(R, 2.2),
        steps=(Step("first", 1.3, "reply"), Step(R, 0.5, "customer"), Step(R, 0.8, "time", minutes=60),
               Step(R, 0.9, "note"), Step(R, 1.4, "status", TicketStatus.RESOLVED),
               Step(R, 1.6, "status", TicketStatus.CLOSED)),
        rating=2,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Story:
    recipe: str
    subject: str
    description: str
    requester: str  # local part of the email at the organization's demo domain
    priority: str
    skills: tuple[str, ...]
    channel: str = Channel.PORTAL
    category: str = ""
    reply: str = "Thanks, we are on it. I will update you here shortly."
    customer: str = "Thanks, still happening on my side."
    note: str = "Checked the monitoring dashboard: nothing else affected."
    rating_comment: str = ""


STORIES: dict[str, list[Story]] = {
    "acme": [
        Story("new_ok", "SAP Business One login for a new starter", "Jo starts Monday and needs a B1 login.",
              "bob", "P3", ("erp",), category="Accounts"),
        Story("new_breached", "Whole office lost internet", "Nothing loads on any computer since 9.", "alice", "P1",
              ("network",), channel=Channel.PHONE, category="Network",
              note="Called the ISP: no outage reported. Trying the office again."),
        Story("open_at_risk", "Outlook keeps asking for a password", "Since this morning, every few minutes.", "dana",
              "P2", ("m365",), category="Email", reply="Could you try signing out of Office and back in?",
              customer="Did that, it asked again ten minutes later.",
              note="Conditional access policy flags her new phone. Reviewing."),
        Story("pending", "New laptop for Mike", "Mike's laptop is five years old.", "mike", "P3", ("windows",),
              category="Hardware", reply="Happy to order one: 14 or 16 inch, and do you need a dock?"),
        Story("on_hold", "Replace the failed disk in the NAS", "The NAS beeps and shows a red light.", "alice",
              "P2", ("backup",), channel=Channel.EMAIL, category="Backup",
              reply="Disk 3 has failed; the array is degraded but your data is safe. A replacement is ordered.",
              note="RMA raised with the vendor, courier due Thursday."),
        Story("resolved_met", "Suspicious email about an unpaid invoice", "Looks like phishing, I did not click.",
              "bob", "P2", ("security",), category="Security",
              reply="Good catch: it is phishing. We have blocked the sender for everyone.",
              customer="Great, thank you!", rating_comment="Quick and clear, thanks."),
        Story("closed_met", "Add Dana to the Finance shared mailbox", "She needs read and send-as.", "alice", "P4",
              ("m365",), category="Email", reply="Done: it appears in Outlook within the hour."),
        Story("closed_breached", "VPN drops every hour", "Working from home, the VPN disconnects.", "mike", "P3",
              ("network",), category="Network", reply="Sorry for the wait. Which VPN client version do you have?",
              customer="Version 4.2, still dropping.", note="Firmware bug on the firewall; update scheduled tonight.",
              rating_comment="Took a while to sort out."),
    ],
    "initech": [
        Story("new_ok", "ERP report export fails", "The month-end export stops at 80 %.", "irene", "P3", ("erp",),
              category="Accounts"),
        Story("new_breached", "Point of sale terminals offline", "Both tills show no network.", "ian", "P1",
              ("network",), channel=Channel.PHONE, category="Network",
              note="Store router not answering monitoring; dispatching someone."),
        Story("open_at_risk", "Shared drive is very slow", "Opening files takes a minute.", "ivan", "P2",
              ("windows",), category="Files", reply="We see high load on the file server; looking at it now.",
              customer="Still slow after lunch.", note="Antivirus full scan running in business hours; rescheduling."),
        Story("pending", "Printer on level 3 prints blank pages", "Every other page comes out blank.", "iris",
              "P3", ("windows",), category="Printing", reply="Could you send a photo of the printer's display?"),
        Story("on_hold", "Restore last week's version of the budget", "Overwritten by mistake.", "irene", "P2",
              ("backup",), channel=Channel.EMAIL, category="Backup",
              reply="The restore is queued: the offsite copy takes a while to come back.",
              note="Waiting on the backup vendor to mount the offsite archive."),
        Story("resolved_met", "Multi-factor prompt on a new phone", "Ian changed phones.", "ian", "P2",
              ("security",), category="Security", reply="Reset: you will be asked to set it up at the next sign-in.",
              customer="Worked, thanks.", rating_comment="Sorted in minutes."),
        Story("closed_met", "Teams calls drop after a minute", "Only on the meeting room PC.", "ivan", "P3",
              ("m365",), category="Collaboration", reply="Updated the room PC's audio driver; calls are stable."),
        Story("closed_breached", "Wi-Fi dead zone in the warehouse", "No signal by the loading dock.", "iris", "P3",
              ("network",), category="Network", reply="Sorry for the delay: we will survey the warehouse.",
              customer="Any news?", note="Extra access point ordered.", rating_comment="Slow, but fixed now."),
    ],
    "globex": [
        Story("new_ok", "Add cost centres to the ERP", "Finance needs three new cost centres.", "gina", "P4",
              ("erp",), category="Accounts"),
        Story("new_breached", "Ransomware warning on a laptop", "A red screen asks for payment.", "carol", "P1",
              ("security",), channel=Channel.PHONE, category="Security",
              note="Laptop isolated by EDR automatically; calling the user."),
        Story("open_at_risk", "Sales team cannot open the CRM", "Error 500 for everyone in sales.", "gary", "P2",
              ("m365",), category="Applications", reply="We can reproduce it and are working on it.",
              customer="Customers are waiting on quotes.", note="Expired app secret in the CRM connector."),
        Story("pending", "Monitor flickers", "The left monitor flickers now and then.", "greg", "P4", ("windows",),
              category="Hardware", reply="Is it the cable or the monitor? Could you try another cable?"),
        Story("on_hold", "Tape backup job failing", "Nightly job red for two nights.", "carol", "P2", ("backup",),
              channel=Channel.EMAIL, category="Backup",
              reply="The tape drive needs a cleaning cartridge; one is on order.",
              note="Cleaning cartridge ships Friday."),
        Story("resolved_met", "Lost phone with company email", "Gary left his phone in a taxi.", "gary", "P1",
              ("security",), category="Security", reply="The phone's company data is wiped and sessions revoked.",
              customer="Thank you, that was fast.", rating_comment="Exactly what we needed."),
        Story("closed_met", "Create a guest Wi-Fi password for the event", "Thursday's client event.", "gina", "P3",
              ("network",), category="Network", reply="Guest network password is on the event sheet."),
        Story("closed_breached", "Laptop very slow to start", "Takes ten minutes to boot.", "greg", "P3",
              ("windows",), category="Hardware", reply="Sorry for the wait: we will replace the disk with an SSD.",
              customer="OK, when?", note="SSD swapped, image restored.", rating_comment="Took a week."),
    ],
}  # fmt: skip


@dataclass
class Timeline:
    """A ticket's calendar and targets, for placing its events in business time."""

    calendar: sla.Calendar
    targets: dict[str, timedelta]
    at_risk_ratio: float
    now: datetime
    start: datetime = field(init=False)

    def offset(self, clock: str, fraction: float) -> timedelta:
        if fraction == RISK:
            fraction = (self.at_risk_ratio + 1) / 2
        return self.targets[clock] * fraction

    def at(self, clock: str, fraction: float) -> datetime:
        return min(sla.add_business_time(self.calendar, self.start, self.offset(clock, fraction)), self.now)


def _timeline(organization: Organization, priority: str, now: datetime) -> Timeline:
    """The calendar and targets a new ticket of this priority gets, read from an unsaved one by the same code."""
    probe = Ticket(organization=organization, priority=priority)
    targets_apply(probe)
    first, resolution = probe.first_response_target, probe.resolution_target
    if first is None or resolution is None:
        raise ValueError(f"No SLA targets for {priority} at {organization}: the demo places tickets by them.")
    return Timeline(
        calendar=calendar_of(probe),
        targets={"first": first, R: resolution},
        at_risk_ratio=float(probe.at_risk_ratio),
        now=now,
    )


def opened_at(calendar: sla.Calendar, now: datetime, age: timedelta) -> datetime:
    """The latest start from which ``age`` of business time has passed by ``now`` (bisection: elapsed time only
    shrinks as the start moves later)."""
    early, late = now - timedelta(days=120), now
    for _ in range(48):
        middle = early + (late - early) / 2
        if sla.business_time_between(calendar, middle, now) >= age:
            early = middle
        else:
            late = middle
    return early


def _shift(name: str) -> BusinessCalendar:
    calendar, _ = BusinessCalendar.objects.get_or_create(
        organization=None,
        name=name,
        defaults={
            "timezone": "Australia/Sydney",
            "always_open": name == ON_CALL,
            "hours": [[day, 7 * 60, 19 * 60] for day in range(5)],
        },
    )
    return calendar


def _technicians() -> tuple[list[str], list[User]]:
    lines, people = [], []
    for email, skills, shift in TECHNICIANS:
        user = User.objects.filter(email=email, is_staff=True).first()
        if user is None:
            continue
        Technician.objects.update_or_create(user=user, defaults={"skills": skills, "shift": _shift(shift),
                                                                 "active": True})  # fmt: skip
        people.append(user)
        lines.append(f"Technician {email}: {', '.join(skills)} ({shift})")
    return lines, people


def _canned() -> None:
    for title, body in CANNED:
        CannedResponse.objects.get_or_create(organization=None, title=title, defaults={"body": body})


def _play(organization: Organization, story: Story, technicians: list[User], now: datetime) -> Ticket:
    recipe = RECIPES[story.recipe]
    timeline = _timeline(organization, story.priority, now)
    timeline.start = opened_at(timeline.calendar, now, timeline.offset(*recipe.age))
    requester_email = f"{story.requester}@{organization.slug}.test"
    requester = User.objects.filter(email=requester_email).first()
    ticket = ticket_create(organization=organization, subject=story.subject, description=story.description,
                           requester=requester, requester_email=requester_email, priority=story.priority,
                           channel=story.channel, category=story.category, required_skills=list(story.skills),
                           now=timeline.start)  # fmt: skip
    zone = ZoneInfo(organization.timezone)
    for step in recipe.steps:
        when = timeline.at(step.clock, step.fraction)
        worker = ticket.assignee if ticket.assignee is not None else technicians[-1]
        if ticket.assignee is None and step.kind in ("reply", "time", "status"):
            ticket = ticket_assign(ticket=ticket, assignee=worker, actor=worker, reason="Picked up from the queue")
        if step.kind == "reply":
            comment_add(ticket=ticket, body=story.reply, author=worker, by_staff=True, now=when)
        elif step.kind == "note":
            comment_add(ticket=ticket, body=story.note, author=worker, by_staff=True, internal=True, now=when)
        elif step.kind == "customer":
            comment_add(ticket=ticket, body=story.customer, author=requester, author_email=requester_email, now=when)
        elif step.kind == "time":
            time_entry_add(ticket=ticket, technician=worker, minutes=step.minutes, note=f"Work on {ticket.reference}",
                           worked_on=when.astimezone(zone).date())  # fmt: skip
        elif step.kind == "status":
            ticket = ticket_set_status(ticket=ticket, status=step.value, actor=worker, now=when)
    if recipe.rating:
        satisfaction_record(ticket=fresh(ticket), rating=recipe.rating, comment=story.rating_comment)
    # The services read the clocks at each back-dated step; read them now, as the breach check will.
    current = fresh(ticket)
    clocks_refresh(current, now)
    current.save(update_fields=SLA_FIELDS)
    return current


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_related("organization", "sla_calendar").get(pk=ticket.pk)


@transaction.atomic
def seed() -> list[str]:
    now = timezone.now()
    lines, technicians = _technicians()
    _canned()
    lines.append(f"{len(CANNED)} canned responses (Tickets > Canned responses)")
    if not technicians:
        return [*lines, "No demo staff to work tickets: run the tenancy demo first."]
    for organization in Organization.objects.filter(slug__in=STORIES).order_by("name"):
        existing = set(Ticket.objects.for_org(organization).values_list("subject", flat=True))
        for story in STORIES[organization.slug]:
            if story.subject not in existing:
                _play(organization, story, technicians, now)
        subjects = [story.subject for story in STORIES[organization.slug]]
        tickets = list(Ticket.objects.for_org(organization).filter(subject__in=subjects))
        statuses = Counter(TicketStatus(ticket.status).label.lower() for ticket in tickets)
        states = Counter(ClockState(ticket.resolution_state).label.lower() for ticket in tickets)
        numbers = sorted(ticket.number for ticket in tickets)
        lines.append(
            f"{organization.name:20} T-{numbers[0]} to T-{numbers[-1]}: "
            + ", ".join(f"{count} {label}" for label, count in sorted(statuses.items()))
            + "; resolution clocks "
            + ", ".join(f"{count} {label}" for label, count in sorted(states.items()))
        )
    lines.append("Staff work them at /admin/tickets/ticket/ (queues: mine, unassigned, at risk, breached).")
    return lines
