"""Serving a ticket's attachment to whoever may see it (the portal for customers, the admin for staff): always as a
download, never rendered inline, and never cached by the browser or anything between."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.utils.cache import add_never_cache_headers

from tickets.models import Attachment


def attachment_download(attachment: Attachment | None) -> FileResponse:
    """The file of ``attachment`` (already looked up within what the caller may see), or 404."""
    if attachment is None:
        raise Http404("No such file.")
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as missing:
        raise Http404("The file is no longer available.") from missing
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment.filename,
        content_type=attachment.content_type or "application/octet-stream",
    )
    add_never_cache_headers(response)
    response["Cache-Control"] += ", no-store"
    return response
