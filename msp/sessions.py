"""Sessions that slide their idle expiry without being written on every request.

A session ends after ``SESSION_COOKIE_AGE`` seconds (``SESSION_IDLE_SECONDS``) without a request. Django pushes the
expiry forward by saving the session on every request (``SESSION_SAVE_EVERY_REQUEST``): a database UPDATE, a cache
write and a new cookie each time a page loads. Here a session that was not changed is saved again only when its
last renewal is at least :data:`RENEW_AFTER` seconds old, so an active person's session is renewed about once a
minute and may end up to a minute before a full idle period has passed since their last request.
"""

from __future__ import annotations

import time

from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse

RENEW_AFTER = 60
RENEWED_KEY = "_renewed_at"


class SessionMiddleware(DjangoSessionMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and session.accessed and not session.is_empty():
            now = int(time.time())
            renewed = session.get(RENEWED_KEY)
            if session.modified or not isinstance(renewed, int) or now - renewed >= RENEW_AFTER:
                # Marks the session modified: it is saved with a new expiry, and its cookie sent again.
                session[RENEWED_KEY] = now
        return super().process_response(request, response)
