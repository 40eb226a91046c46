from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from events.services import publish
from notifications.rendering import date_text
from notifications.services import notify
from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError, field_error
from tenancy.models import Invitation, Membership, Organization, Role, User
from tenancy.secrets import new_token, token_hash

INVITATION_LIFETIME = timedelta(days=7)


def member_announce(membership: Membership) -> None:
    """Publish ``user.created`` to the organization a person has just joined (in the caller's transaction)."""
    user = membership.user
    publish(
        membership.organization,
        "user.created",
        {"id": user.pk, "email": user.email, "full_name": user.full_name, "role": membership.role},
    )


def _lock_owners(organization_id: uuid.UUID) -> list[Membership]:
    """Lock the organization's owner rows, always in primary-key order so concurrent changes queue, not deadlock."""
    return list(
        Membership.objects.select_for_update().filter(organization_id=organization_id, role=Role.OWNER).order_by("pk")
    )


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise field_error("role", f"Role must be one of {', '.join(Role.values)}.")


def _check_may_grant(actor_role: str | None, role: str) -> None:
    # Only owners hand out or take away ownership.
    if role == Role.OWNER and actor_role not in (Role.OWNER, None):
        raise field_error("role", "Only an owner can make someone an owner.")


def invitation_create(
    *,
    organization: Organization,
    email: str,
    role: str,
    invited_by: User | None,
    actor_role: str | None = None,
    ip: str | None = None,
) -> tuple[Invitation, str]:
    """Invite ``email`` to join with ``role``. Returns the invitation and its one-time token (emailed as a link)."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise field_error("email", "Enter a valid email address.") from exc
    _check_role(role)
    _check_may_grant(actor_role, role)
    if Membership.objects.for_org(organization).filter(user__email__iexact=email).exists():
        raise ConflictError(f"{email} is already a member of {organization.name}.", field="email")
    token = new_token()
    try:
        with transaction.atomic():
            # An earlier open invitation to the same address is replaced by this one.
            Invitation.objects.for_org(organization).filter(
                email=email, accepted_at__isnull=True, revoked_at__isnull=True
            ).update(revoked_at=timezone.now())
            invitation = Invitation.objects.create(
                organization=organization,
                email=email,
                role=role,
                token_hash=token_hash(token),
                invited_by=invited_by,
                expires_at=timezone.now() + INVITATION_LIFETIME,
            )
            audit_record(
                action="member.invited",
                organization=organization,
                actor=invited_by,
                target=invitation,
                changes={"email": email, "role": role},
                ip=ip,
            )
            # The invitee may have no account: their address is told. The link's token is sealed (emailed, never
            # stored readable).
            notify(
                organization=organization,
                event_type="account.invitation",
                addresses=[email],
                template="invitation",
                key=f"invitation:{invitation.pk}",
                context={
                    "organization_name": organization.display_name,
                    "inviter": invited_by.get_full_name() if invited_by else organization.display_name,
                    "role": str(Role(role).label),
                    "expires_at": date_text(invitation.expires_at, "j F Y, H:i e"),
                },
                sealed={"path": f"/invite/{token}/"},
            )
    except IntegrityError as exc:
        raise ConflictError(f"An invitation for {email} is already open.", field="email") from exc
    return invitation, token


def invitation_for_token(token: str) -> Invitation | None:
    invitation = Invitation.objects.select_related("organization").filter(token_hash=token_hash(token)).first()
    if invitation is None or not invitation.is_open:
        return None
    return invitation


def invitation_accept(
    *,
    token: str,
    user: User | None = None,
    password: str | None = None,
    full_name: str = "",
    ip: str | None = None,
) -> Membership:
    """Accept an invitation. A signed-in ``user`` joins as themselves; otherwise an account is created for the
    invited email with ``password`` (or, if one exists, the caller must sign in first)."""
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update().select_related("organization").filter(token_hash=token_hash(token))
        ).first()
        if invitation is None or not invitation.is_open:
            raise field_error("token", "This invitation is invalid, expired or already used.")
        if user is None:
            if User.objects.filter(email__iexact=invitation.email).exists():
                raise ConflictError("An account with this email exists: sign in to accept the invitation.")
            try:
                validate_password(password or "", User(email=invitation.email, full_name=full_name))
            except ValidationError as exc:
                raise ServiceValidationError({"password": list(exc.messages)}) from exc
            user = User.objects.create_user(email=invitation.email, password=password, full_name=full_name.strip())
        elif user.email.lower() != invitation.email.lower():
            raise field_error("token", f"This invitation was sent to {invitation.email}; sign in as that user.")
        membership, created = Membership.objects.get_or_create(
            user=user, organization=invitation.organization, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        if created:
            member_announce(membership)
            audit_record(
                action="member.joined",
                organization=invitation.organization,
                actor=user,
                target=membership,
                changes={"role": invitation.role},
                ip=ip,
            )
    return membership


def invitation_revoke(*, invitation: Invitation, actor: User | None, ip: str | None = None) -> Invitation:
    with transaction.atomic():
        updated = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            audit_record(
                action="member.invitation_revoked",
                organization=invitation.organization,
                actor=actor,
                target=invitation,
                ip=ip,
            )
    invitation.refresh_from_db()
    return invitation


def membership_change_role(
    *, membership: Membership, role: str, actor: User | None, actor_role: str | None = None, ip: str | None = None
) -> Membership:
    _check_role(role)
    _check_may_grant(actor_role, role)
    if membership.role == Role.OWNER:
        _check_may_grant(actor_role, Role.OWNER)
    with transaction.atomic():
        owners = _lock_owners(membership.organization_id)
        locked = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user", "organization")
            .get(pk=membership.pk)
        )
        if locked.role == role:
            return locked
        if locked.role == Role.OWNER and len(owners) <= 1:
            raise ConflictError("An organization needs at least one owner.", field="role")
        changes = {"role": [locked.role, role], "user": locked.user.email}
        locked.role = role
        locked.save(update_fields=["role"])
        audit_record(
            action="member.role_changed",
            organization=locked.organization,
            actor=actor,
            target=locked,
            changes=changes,
            ip=ip,
        )
        publish(
            locked.organization,
            "user.role_changed",
            {"user": locked.user_id, "email": locked.user.email, "from": changes["role"][0], "to": role},
        )
    return locked


def membership_remove(
    *, membership: Membership, actor: User | None, actor_role: str | None = None, ip: str | None = None
) -> None:
    if membership.role == Role.OWNER:
        _check_may_grant(actor_role, Role.OWNER)
    with transaction.atomic():
        owners = _lock_owners(membership.organization_id)
        locked = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user", "organization")
            .get(pk=membership.pk)
        )
        if locked.role == Role.OWNER and len(owners) <= 1:
            raise ConflictError("An organization needs at least one owner.", field="role")
        audit_record(
            action="member.removed",
            organization=locked.organization,
            actor=actor,
            target=locked,
            changes={"user": locked.user.email, "role": locked.role},
            ip=ip,
        )
        locked.delete()
