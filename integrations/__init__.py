"""Keel's connections to the systems around an MSP: one sub-package (and Django app) per provider.

Each provider package holds its own models, adapter (the real client) and sandbox (for local runs), webhook view,
services, tasks and admin, so adding or removing an integration touches one folder and one line of settings.
"""
