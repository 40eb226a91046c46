"""What a ticket accepts as an attachment: size, type, content that matches its type, and a harmless name.

Used by ``tickets.services.attachment_add`` and by every form that takes files (portal, staff reply, inbound mail)
so each refuses a file with the same words before anything is stored.
"""

from __future__ import annotations

from typing import Any

ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
ATTACHMENT_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "message/rfc822",
}
# How a file of each binary type starts. A file sent as one of these types must start so: a program or a page of
# HTML sent as "invoice.pdf" or "image/png" is refused.
ATTACHMENT_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
}
# Programs (Windows, Linux, macOS), refused whatever type they are sent as: one of these starts, then binary bytes
# (so a text file that merely starts with the letters "MZ" is not one).
EXECUTABLE_STARTS = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
# Names that run as a program or open as a page when the downloaded file is opened, whatever its content.
ACTIVE_EXTENSIONS = frozenset({
    "exe", "com", "scr", "pif", "dll", "msi", "bat", "cmd", "ps1", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta",
    "jar", "sh", "lnk", "reg", "html", "htm", "xhtml", "shtml", "svg", "svgz", "mht", "mhtml",
})  # fmt: skip


def declared_type(upload: Any) -> str:
    """The media type the upload claims, without parameters, in lower case ("" when it claims none)."""
    return str(getattr(upload, "content_type", "") or "").split(";")[0].strip().lower()


def _head(upload: Any) -> bytes:
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    return head if isinstance(head, bytes) else b""


def attachment_refusal(upload: Any) -> str | None:
    """Why ``attachment_add`` refuses this file, or None: too big, a type not accepted, content that is not what its
    type says or is a program, or a name that runs or renders when the downloaded file is opened."""
    content_type = declared_type(upload)
    name = str(upload.name)
    if upload.size > ATTACHMENT_MAX_BYTES:
        return f"{name}: larger than {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB."
    if content_type not in ATTACHMENT_TYPES:
        return f"{name}: files of type {content_type or 'unknown'} are not accepted."
    head = _head(upload)
    signatures = ATTACHMENT_SIGNATURES.get(content_type)
    program = head.startswith(EXECUTABLE_STARTS) and any(byte < 9 for byte in head)
    if program or (signatures and not head.startswith(signatures)):
        return f"{name}: the content does not match its type ({content_type})."
    if "." in name and name.rsplit(".", 1)[-1].strip().lower() in ACTIVE_EXTENSIONS:
        return f"{name}: files named .{name.rsplit('.', 1)[-1].strip().lower()} are not accepted."
    return None
