"""Messaging's people: the contact list (search, tag filter), creating and editing a contact, the contact's timeline
with its consent and do-not-contact buttons, the CSV import (upload, preview, confirm) and the do-not-contact list.

The import keeps the uploaded bytes between the preview and the confirmation, so the confirmation imports exactly
the file that was previewed: the bytes go to the default storage (``MEDIA_ROOT`` in production) under a random
token, and the session records the token with the organization, the person, the region and the bytes' SHA-256. Only
that session, in that organization, can see or confirm the preview; confirming re-runs the real import on those
bytes, then forgets the file, so a second confirmation imports nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from portal.access import MemberRequest
from portal.messaging_forms import ConsentForm, ContactForm, DncForm, ImportForm
from portal.views.messaging import (
    PAGE_SIZE,
    SERVICE_ERRORS,
    form_refused,
    messaging_page,
    org_of,
    refusal_status,
    refuse,
)
from sms.models import Click, ConsentEvent, Contact, DncReason, DoNotContact, InboundMessage, SendJob
from sms.services.contacts import (
    ZONES,
    consent_record,
    consent_withdraw,
    contact_create,
    contact_update,
    dnc_add,
    dnc_remove,
    phone_field,
)
from sms.services.imports import contacts_import
from tenancy.models import Organization

TIMELINE_LIMIT = 100  # the latest of each kind of event
IMPORT_DIR = "sms-imports"
IMPORTS_KEY = "messaging_imports"
IMPORTS_KEPT = 5  # previews a session keeps; older ones are forgotten and their files deleted
IMPORT_MAX_AGE = timedelta(days=1)  # files older than this are left-overs of abandoned previews
ERRORS_SHOWN = 200
COMMON_ZONES = sorted(zone for zone in ZONES if zone.startswith(("Australia/", "Pacific/Auckland", "Asia/", "Europe/")))


def _contacts(organization: Organization) -> QuerySet[Contact]:
    on_dnc = DoNotContact.objects.for_org(organization).filter(phone_e164=OuterRef("phone_e164"))
    return Contact.objects.for_org(organization).annotate(on_dnc=Exists(on_dnc))


def _contact_or_404(request: MemberRequest, contact_id: Any) -> Contact:
    contact = _contacts(org_of(request)).filter(pk=contact_id).first()
    if contact is None:
        raise Http404("No such contact.")
    return contact


def _contact_url(contact: Contact) -> str:
    return reverse("portal:messaging_contact", args=[contact.pk])


def _search(contacts: QuerySet[Contact], query: str) -> QuerySet[Contact]:
    """Part of a name, an email, or a phone number as people type it (``0412 345``, ``+61 412``)."""
    match = Q(first_name__icontains=query) | Q(last_name__icontains=query) | Q(email__icontains=query)
    digits = re.sub(r"\D", "", query)
    if len(digits) >= 3:
        # A national number's leading 0 is not in E.164: 0412 is found in +61412...
        match |= Q(phone_e164__contains=digits.lstrip("0") or digits)
    return contacts.filter(match)


# -- the list -------------------------------------------------------------------------------------------------------


@require_safe
@messaging_page
def messaging_contacts(request: MemberRequest) -> HttpResponse:
    org = org_of(request)
    query = request.GET.get("q", "").strip()[:100]
    tag = request.GET.get("tag", "").strip().lower()[:40]
    contacts = _contacts(org).order_by("last_name", "first_name", "phone_e164", "id")
    if tag:
        contacts = contacts.filter(tags__contains=f",{tag},")
    if query:
        contacts = _search(contacts, query)
    # Queries: the count, one page of contacts (with their DNC flag), the tags in use.
    page = Paginator(contacts, PAGE_SIZE).get_page(request.GET.get("page"))
    tag_texts = Contact.objects.for_org(org).exclude(tags="").values_list("tags", flat=True).distinct()
    tags = sorted({name for text in tag_texts for name in text.split(",") if name})
    context = {"page": page, "query": query, "tag": tag, "tags": tags}
    return render(request, "portal/messaging/contacts.html", context)


# -- creating and editing -------------------------------------------------------------------------------------------


def _form_page(request: MemberRequest, form: ContactForm, contact: Contact | None, status: int = 200) -> HttpResponse:
    context = {"form": form, "contact": contact, "zones": COMMON_ZONES}
    return render(request, "portal/messaging/contact_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@messaging_page
def messaging_contact_new(request: MemberRequest) -> HttpResponse:
    if request.method == "GET":
        return _form_page(request, ContactForm(), None)
    form = ContactForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, None, status=400)
    try:
        contact = contact_create(
            organization=org_of(request),
            phone=form.cleaned_data["phone"],
            region=form.cleaned_data["region"],
            data=form.contact_data(),
            consent=form.consent_data(),
        )
    except SERVICE_ERRORS as exc:
        form_refused(form, exc)
        return _form_page(request, form, None, status=refusal_status(exc))
    messages.success(request, f"{contact} was added.")
    return HttpResponseRedirect(_contact_url(contact))


@require_http_methods(["GET", "POST"])
@messaging_page
def messaging_contact_edit(request: MemberRequest, contact_id: Any) -> HttpResponse:
    contact = _contact_or_404(request, contact_id)
    if request.method == "GET":
        initial = {name: getattr(contact, name) for name in ("first_name", "last_name", "email", "timezone")}
        initial["tags"] = ", ".join(contact.tag_list)
        return _form_page(request, ContactForm(initial=initial, editing=True), contact)
    form = ContactForm(request.POST, editing=True)
    if not form.is_valid():
        return _form_page(request, form, contact, status=400)
    try:
        contact_update(contact=contact, data=form.contact_data())
    except SERVICE_ERRORS as exc:
        form_refused(form, exc)
        return _form_page(request, form, contact, status=refusal_status(exc))
    messages.success(request, f"{contact} was saved.")
    return HttpResponseRedirect(_contact_url(contact))


# -- the contact's timeline -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One event of a contact's timeline: ``kind`` is message, click, reply or consent; ``item`` its row."""

    at: datetime
    kind: str
    item: Any


def timeline(organization: Organization, contact: Contact) -> list[Entry]:
    """Messages sent to the contact, clicks on its short links, its replies and its consent and DNC changes, newest
    first: four queries, the latest ``TIMELINE_LIMIT`` of each kind."""
    jobs = (
        SendJob.objects.for_org(organization)
        .filter(contact=contact)
        .select_related("campaign", "number")
        .order_by("-created_at", "-id")[:TIMELINE_LIMIT]
    )
    clicks = (
        Click.objects.for_org(organization)
        .filter(link__job__contact=contact)
        .select_related("link__job__campaign")
        .order_by("-at", "-id")[:TIMELINE_LIMIT]
    )
    # A reply from the number before the contact existed has no contact yet: it is still this person's.
    replies = (
        InboundMessage.objects.for_org(organization)
        .filter(Q(contact=contact) | Q(contact__isnull=True, from_e164=contact.phone_e164))
        .select_related("campaign")
        .order_by("-received_at", "-id")[:TIMELINE_LIMIT]
    )
    changes = (
        ConsentEvent.objects.for_org(organization)
        .filter(Q(contact=contact) | Q(phone_e164=contact.phone_e164))
        .order_by("-at", "-id")[:TIMELINE_LIMIT]
    )
    entries = [Entry(job.sent_at or job.created_at, "message", job) for job in jobs]
    entries += [Entry(click.at, "click", click) for click in clicks]
    entries += [Entry(reply.received_at, "reply", reply) for reply in replies]
    entries += [Entry(change.at, "consent", change) for change in changes]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries


def _render_contact(
    request: MemberRequest, contact: Contact, consent_form: ConsentForm | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "contact": contact,
        "timeline": timeline(org_of(request), contact),
        "timeline_limit": TIMELINE_LIMIT,
        "consent_form": consent_form or ConsentForm(),
    }
    return render(request, "portal/messaging/contact.html", context, status=status)


@require_safe
@messaging_page
def messaging_contact(request: MemberRequest, contact_id: Any) -> HttpResponse:
    return _render_contact(request, _contact_or_404(request, contact_id))


@require_POST
@messaging_page
def messaging_contact_consent(request: MemberRequest, contact_id: Any) -> HttpResponse:
    """Record the contact's consent (where and to what wording) or withdraw it."""
    contact = _contact_or_404(request, contact_id)
    action = request.POST.get("action", "")
    if action == "withdraw":
        if contact.consent_at is None:
            messages.info(request, f"{contact} has no consent on record.")
            return HttpResponseRedirect(_contact_url(contact))
        consent_withdraw(contact=contact, source=f"portal: {request.user.email}")
        messages.success(request, f"Consent of {contact} withdrawn: campaigns skip this contact.")
        return HttpResponseRedirect(_contact_url(contact))
    if action != "record":
        messages.error(request, "Record or withdraw consent.")
        return _render_contact(request, contact, status=400)
    form = ConsentForm(request.POST)
    if not form.is_valid():
        return _render_contact(request, contact, consent_form=form, status=400)
    try:
        consent_record(
            contact=contact, source=form.cleaned_data["consent_source"], text=form.cleaned_data["consent_text"]
        )
    except SERVICE_ERRORS as exc:
        form_refused(form, exc)
        return _render_contact(request, contact, consent_form=form, status=refusal_status(exc))
    messages.success(request, f"Consent of {contact} recorded.")
    return HttpResponseRedirect(_contact_url(contact))


@require_POST
@messaging_page
def messaging_contact_dnc(request: MemberRequest, contact_id: Any) -> HttpResponse:
    """Put the contact's number on the do-not-contact list, or take it off."""
    contact = _contact_or_404(request, contact_id)
    org = org_of(request)
    action = request.POST.get("action", "")
    source = f"portal: {request.user.email}"
    if action == "add":
        dnc_add(organization=org, phone_e164=contact.phone_e164, reason=DncReason.MANUAL, source=source)
        messages.success(request, f"{contact.phone_e164} is on the do-not-contact list: nothing is sent to it.")
    elif action == "remove":
        if dnc_remove(organization=org, phone_e164=contact.phone_e164, source=source):
            messages.success(request, f"{contact.phone_e164} is off the do-not-contact list.")
        else:
            messages.info(request, f"{contact.phone_e164} was not on the do-not-contact list.")
    else:
        messages.error(request, "Add the number to the do-not-contact list or remove it.")
        return _render_contact(request, contact, status=400)
    return HttpResponseRedirect(_contact_url(contact))


# -- import ---------------------------------------------------------------------------------------------------------


def _imports(request: MemberRequest) -> dict[str, dict[str, Any]]:
    stored = request.session.get(IMPORTS_KEY)
    return stored if isinstance(stored, dict) else {}


def _forget_old_files() -> None:
    """Delete preview files nobody confirmed (their sessions ended or moved on)."""
    limit = timezone.now() - IMPORT_MAX_AGE
    with contextlib.suppress(OSError, NotImplementedError):
        for name in default_storage.listdir(IMPORT_DIR)[1]:
            path = f"{IMPORT_DIR}/{name}"
            if default_storage.get_modified_time(path) < limit:
                default_storage.delete(path)


def _keep_preview(request: MemberRequest, content: bytes, region: str, name: str, report: dict[str, Any]) -> str:
    token = secrets.token_urlsafe(24)
    path = default_storage.save(f"{IMPORT_DIR}/{token}.csv", ContentFile(content))
    imports = _imports(request)
    imports[token] = {
        "organization": str(org_of(request).pk),
        "user": str(request.user.pk),
        "path": path,
        "sha256": hashlib.sha256(content).hexdigest(),
        "region": region,
        "name": name[:200],
        "at": timezone.now().isoformat(),
        "preview": report,
        "imported": None,
    }
    while len(imports) > IMPORTS_KEPT:
        oldest = min(imports, key=lambda key: imports[key]["at"])
        old = imports.pop(oldest)
        if old.get("path"):
            default_storage.delete(old["path"])
    request.session[IMPORTS_KEY] = imports
    _forget_old_files()
    return token


def _preview_or_404(request: MemberRequest, token: str) -> dict[str, Any]:
    """The session's preview ``token``, made in the current organization by this person; 404 otherwise."""
    entry = _imports(request).get(token)
    if (
        entry is None
        or entry.get("organization") != str(org_of(request).pk)
        or entry.get("user") != str(request.user.pk)
    ):
        raise Http404("No such import preview.")
    return entry


def _shown(report: dict[str, Any]) -> dict[str, Any]:
    """A report as the session keeps it: the counts, and the first ``ERRORS_SHOWN`` row errors."""
    invalid = report["invalid"]
    return {
        **report,
        "invalid": invalid[:ERRORS_SHOWN],
        "invalid_count": len(invalid),
        "invalid_rows": len({error["row"] for error in invalid}),
    }


def _import_page(request: MemberRequest, form: ImportForm, status: int = 200) -> HttpResponse:
    return render(request, "portal/messaging/import.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@messaging_page
def messaging_import(request: MemberRequest) -> HttpResponse:
    """Upload a CSV file: it is checked in full (a dry run) and the preview shows what the import will do."""
    if request.method == "GET":
        return _import_page(request, ImportForm())
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _import_page(request, form, status=400)
    content: bytes = form.cleaned_data["file"]
    region: str = form.cleaned_data["default_region"]
    try:
        report = contacts_import(organization=org_of(request), content=content, dry_run=True, region=region)
    except SERVICE_ERRORS as exc:
        form_refused(form, exc)
        return _import_page(request, form, status=refusal_status(exc))
    name = getattr(request.FILES.get("file"), "name", "") or "contacts.csv"
    token = _keep_preview(request, content, region, name, _shown(report.as_dict()))
    return HttpResponseRedirect(reverse("portal:messaging_import_preview", args=[token]))


@require_safe
@messaging_page
def messaging_import_preview(request: MemberRequest, token: str) -> HttpResponse:
    entry = _preview_or_404(request, token)
    context = {"token": token, "entry": entry, "preview": entry["preview"], "imported": entry["imported"]}
    return render(request, "portal/messaging/import_preview.html", context)


@require_POST
@messaging_page
def messaging_import_confirm(request: MemberRequest, token: str) -> HttpResponse:
    """Import the previewed bytes for real (once: the file is forgotten afterwards)."""
    entry = _preview_or_404(request, token)
    preview_url = reverse("portal:messaging_import_preview", args=[token])
    if entry["imported"] is not None:
        messages.info(request, "This file was already imported; nothing more was done.")
        return HttpResponseRedirect(preview_url)
    again = reverse("portal:messaging_import")
    try:
        with default_storage.open(entry["path"], "rb") as stored:
            content = stored.read()
    except (OSError, FileNotFoundError):
        messages.error(request, "The uploaded file is no longer kept; upload it again.")
        return HttpResponseRedirect(again)
    if hashlib.sha256(content).hexdigest() != entry["sha256"]:
        messages.error(request, "The uploaded file changed since the preview; upload it again.")
        return HttpResponseRedirect(again)
    try:
        report = contacts_import(organization=org_of(request), content=content, dry_run=False, region=entry["region"])
    except SERVICE_ERRORS as exc:
        return refuse(request, exc, preview_url)
    imports = _imports(request)
    imports[token] = {**entry, "imported": _shown(report.as_dict()), "path": ""}
    request.session[IMPORTS_KEY] = imports
    default_storage.delete(entry["path"])
    messages.success(request, f"Imported: {report.created} new contacts, {report.updated} updated.")
    return HttpResponseRedirect(preview_url)


# -- the do-not-contact list ----------------------------------------------------------------------------------------


def _dnc_page(request: MemberRequest, form: DncForm, status: int = 200) -> HttpResponse:
    org = org_of(request)
    query = request.GET.get("q", "").strip()[:40]
    contact = Contact.objects.for_org(org).filter(phone_e164=OuterRef("phone_e164")).values("pk")[:1]
    entries = DoNotContact.objects.for_org(org).annotate(contact_id=Subquery(contact)).order_by("-created_at", "-id")
    digits = re.sub(r"\D", "", query)
    if digits:
        entries = entries.filter(phone_e164__contains=digits.lstrip("0") or digits)
    # Queries: the count and one page of entries, each with its contact's id.
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "form": form, "query": query}
    return render(request, "portal/messaging/dnc.html", context, status=status)


@require_http_methods(["GET", "POST"])
@messaging_page
def messaging_dnc(request: MemberRequest) -> HttpResponse:
    """The do-not-contact list; add a number by hand (it stays until removed, and nothing is sent to it)."""
    if request.method == "GET":
        return _dnc_page(request, DncForm())
    form = DncForm(request.POST)
    if not form.is_valid():
        return _dnc_page(request, form, status=400)
    org = org_of(request)
    try:
        phone = phone_field(form.cleaned_data["phone"], region=form.cleaned_data["region"])
    except SERVICE_ERRORS as exc:
        form_refused(form, exc)
        return _dnc_page(request, form, status=refusal_status(exc))
    if DoNotContact.objects.for_org(org).filter(phone_e164=phone).exists():
        messages.info(request, f"{phone} was already on the do-not-contact list.")
        return HttpResponseRedirect(reverse("portal:messaging_dnc"))
    source = form.cleaned_data["source"] or f"portal: {request.user.email}"
    dnc_add(organization=org, phone_e164=phone, reason=DncReason.MANUAL, source=source)
    messages.success(request, f"{phone} is on the do-not-contact list: nothing is sent to it.")
    return HttpResponseRedirect(reverse("portal:messaging_dnc"))


@require_POST
@messaging_page
def messaging_dnc_remove(request: MemberRequest, entry_id: int) -> HttpResponse:
    org = org_of(request)
    entry = DoNotContact.objects.for_org(org).filter(pk=entry_id).first()
    if entry is None:
        raise Http404("No such entry.")
    dnc_remove(organization=org, phone_e164=entry.phone_e164, source=f"portal: {request.user.email}")
    messages.success(request, f"{entry.phone_e164} is off the do-not-contact list.")
    return HttpResponseRedirect(reverse("portal:messaging_dnc"))
