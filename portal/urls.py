"""The public site and the customer portal. Every view here is guarded by ``portal.middleware.PortalMiddleware``
according to the access level it declares (``portal.access``)."""

from django.urls import path
from django.views.generic import RedirectView

from portal.views import (
    account,
    auth,
    billing,
    dashboard,
    invite,
    invoices,
    organization,
    plans,
    public,
    qualify,
    support,
)

app_name = "portal"

urlpatterns = [
    # Public
    path("", public.landing, name="landing"),
    path("branding/<uuid:org_id>/logo", public.brand_logo, name="brand_logo"),
    path("invite/<str:token>/", invite.invite_accept, name="invite_accept"),
    path("questionnaire-core-plus", qualify.questionnaire_core_plus, name="questionnaire_core_plus"),
    path("questionnaire-premium", qualify.questionnaire_premium, name="questionnaire_premium"),
    path("enterprise-discovery", qualify.enterprise_discovery, name="enterprise_discovery"),
    path("qualification-status/<uuid:qualification_id>", plans.qualification_status, name="qualification_status"),
    path("qualification-status/<uuid:qualification_id>/quote", plans.qualification_quote, name="qualification_quote"),
    path("business-plans", plans.business_plans, name="business_plans"),
    path("plan-selector", plans.plan_selector, name="plan_selector"),
    path("quote/<str:quote_key>", plans.quote_page, name="quote"),
    path("quote/<str:quote_key>/checkout", billing.quote_checkout, name="quote_checkout"),
    path("checkout/complete", billing.checkout_complete, name="checkout_complete"),
    # Signing in and out
    path("login/", auth.login_view, name="login"),
    path("login/verify/", auth.login_verify, name="login_verify"),
    path("login/magic/", auth.magic_link, name="magic_link"),
    path("login/magic/confirm/", auth.magic_link_confirm, name="magic_link_confirm"),
    path("login/welcome/", auth.welcome_link_confirm, name="welcome_link_confirm"),
    path("logout/", auth.logout_view, name="logout"),
    path("password-reset/", auth.password_reset, name="password_reset"),
    path("password-reset/sent/", auth.password_reset_done, name="password_reset_done"),
    path("password-reset/complete/", auth.password_reset_complete, name="password_reset_complete"),
    path("password-reset/<uidb64>/<token>/", auth.password_reset_confirm, name="password_reset_confirm"),
    # The portal
    path("switch/<slug:slug>/", account.switch_org, name="switch_org"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("billing/", billing.billing, name="billing"),
    path("billing/portal/", billing.billing_portal, name="billing_portal"),
    path("billing/plan/", billing.billing_change_plan, name="billing_change_plan"),
    path("billing/cancel/", billing.billing_cancel, name="billing_cancel"),
    path("billing/resume/", billing.billing_resume, name="billing_resume"),
    path("billing/invoices/", invoices.billing_invoices, name="billing_invoices"),
    path("billing/invoices/<uuid:invoice_id>/", invoices.billing_invoice, name="billing_invoice"),
    path("billing/invoices/<uuid:invoice_id>/pay/", invoices.billing_invoice_pay, name="billing_invoice_pay"),
    path("billing/invoices/<uuid:invoice_id>/pdf/", invoices.billing_invoice_pdf, name="billing_invoice_pdf"),
    # Support
    path("support/", support.support, name="support"),
    path("support/new/", support.support_new, name="support_new"),
    path("support/tickets/<int:number>/", support.support_ticket, name="support_ticket"),
    path("support/tickets/<int:number>/reply/", support.support_reply, name="support_reply"),
    path("support/tickets/<int:number>/status/", support.support_status, name="support_status"),
    path("support/tickets/<int:number>/rate/", support.support_rate, name="support_rate"),
    path("support/attachments/<int:attachment_id>/", support.support_attachment, name="support_attachment"),
    path("support/performance/", support.support_performance, name="support_performance"),
    path("settings/", RedirectView.as_view(pattern_name="portal:settings_profile"), name="settings"),
    path("settings/profile/", account.profile, name="settings_profile"),
    path("settings/password/", account.password, name="settings_password"),
    path("settings/two-factor/", account.two_factor, name="settings_two_factor"),
    path("settings/two-factor/enrol/", account.two_factor_enrol, name="settings_two_factor_enrol"),
    path("settings/two-factor/backup-codes/", account.two_factor_backup_codes, name="settings_two_factor_backup_codes"),
    path("settings/two-factor/disable/", account.two_factor_disable, name="settings_two_factor_disable"),
    path("settings/team/", organization.team, name="settings_team"),
    path("settings/team/invite/", organization.team_invite, name="settings_team_invite"),
    path("settings/team/members/<uuid:membership_id>/role/", organization.member_role, name="settings_member_role"),
    path(
        "settings/team/members/<uuid:membership_id>/remove/", organization.member_remove, name="settings_member_remove"
    ),
    path(
        "settings/team/invitations/<uuid:invitation_id>/revoke/",
        organization.invitation_revoke_view,
        name="settings_invitation_revoke",
    ),
    path("settings/security/", organization.security, name="settings_security"),
    path("settings/branding/", organization.branding, name="settings_branding"),
    path("settings/api-keys/", organization.api_keys, name="settings_api_keys"),
    path("settings/api-keys/<uuid:key_id>/revoke/", organization.api_key_revoke_view, name="settings_api_key_revoke"),
    path("settings/api-keys/<uuid:key_id>/rotate/", organization.api_key_rotate_view, name="settings_api_key_rotate"),
    path("settings/audit/", organization.audit, name="settings_audit"),
    path("settings/export/", organization.export, name="settings_export"),
]
