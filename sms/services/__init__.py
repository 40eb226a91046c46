"""Messaging's writes: contacts and consent (``contacts``), imports (``imports``)."""
