"""Every write to tenancy data goes through these functions. Each is one transaction."""

from tenancy.services.accounts import user_password_set, user_profile_update
from tenancy.services.api_keys import api_key_create, api_key_revoke, api_key_rotate, api_key_touch
from tenancy.services.members import (
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
)
from tenancy.services.mfa import mfa_backup_codes_regenerate, mfa_disable, mfa_enrol_confirm, mfa_enrol_start
from tenancy.services.organizations import (
    branding_update,
    invoice_emails_update,
    organization_create,
    organization_export,
    organization_reactivate,
    organization_suspend,
    organization_update,
)

__all__ = [
    "api_key_create",
    "api_key_revoke",
    "api_key_rotate",
    "api_key_touch",
    "branding_update",
    "invitation_accept",
    "invitation_create",
    "invitation_revoke",
    "invoice_emails_update",
    "membership_change_role",
    "membership_remove",
    "mfa_backup_codes_regenerate",
    "mfa_disable",
    "mfa_enrol_confirm",
    "mfa_enrol_start",
    "organization_create",
    "organization_export",
    "organization_reactivate",
    "organization_suspend",
    "organization_update",
    "user_password_set",
    "user_profile_update",
]
