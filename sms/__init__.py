"""Messaging: contacts and consent, do-not-contact, templates, campaigns, the 7-gate send pipeline, short links."""
