"""Messaging in the partner API, continued: templates, sending numbers, campaigns (launch, pause, resume, cancel,
statistics), their messages (send jobs) and the kill switch.

Access is ``sms.api.SmsAPIView``'s: API keys need ``read`` + ``sms:read`` to read and ``write`` + ``sms:write`` to
write; people must be owners, admins or managers of the organization (or its partner's admin), plain members get
403. Launching, pausing and resuming also go through ``sms.services.campaigns``' own check (PermissionDenied, 403).
A write needs the organization to act for (``X-Organization`` for a partner key).

Every object is looked up within the organizations the caller may see: another organization's template, number,
campaign or message is 404 on every route, as is a malformed id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from sms.api import SmsAPIView, parse_uuid
from sms.counters import sms_settings
from sms.models import (
    Campaign,
    CampaignNumber,
    CampaignStatus,
    CampaignTemplate,
    JobState,
    SendingNumber,
    SendJob,
    Template,
)
from sms.selectors import budget_view, campaign_stats, numbers_today, with_clicks
from sms.serializers import (
    CAMPAIGN_NOT_FOUND,
    CONFLICT,
    LAUNCH_FORBIDDEN,
    MESSAGE_NOT_FOUND,
    NUMBER_NOT_FOUND,
    TEMPLATE_NOT_FOUND,
    CampaignInputSerializer,
    CampaignLaunchSerializer,
    CampaignSerializer,
    CampaignStatsSerializer,
    KillSwitchInputSerializer,
    KillSwitchSerializer,
    MessageSerializer,
    SendingNumberSerializer,
    TemplateInputSerializer,
    TemplateSerializer,
)
from sms.services.campaigns import (
    campaign_cancel,
    campaign_create,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    template_create,
    template_update,
)
from sms.services.controls import kill_switch_set, template_delete
from tenancy.api_base import PAGE_PARAMETERS, refuse_unknown, represent_many, request_object
from tenancy.models import Organization, User

TEMPLATE_ID = OpenApiParameter("pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The template's id.")
NUMBER_ID = OpenApiParameter("pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The number's id.")
CAMPAIGN_ID = OpenApiParameter("pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The campaign's id.")
MESSAGE_ID = OpenApiParameter("pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The message's id.")


def choice_filter(params: Any, name: str, choices: list[str]) -> str:
    """The query parameter ``name`` if it is one of ``choices``, "" when absent; a 400 naming it otherwise."""
    value = params.get(name, "")
    if value and value not in choices:
        raise exceptions.ValidationError({name: [f"Must be one of {', '.join(choices)}."]})
    return str(value)


def uuid_filter(params: Any, name: str) -> str:
    """The query parameter ``name`` as an id, "" when absent; a 400 naming it when it is not an id."""
    value = params.get(name, "")
    if value:
        try:
            return str(parse_uuid(value, name))
        except exceptions.NotFound:
            raise exceptions.ValidationError({name: [f"{value!r} is not an id."]}) from None
    return ""


# -- templates ---------------------------------------------------------------------------------------------------


class TemplateAPIView(SmsAPIView):
    def templates(self) -> QuerySet[Template]:
        return self.scoped(Template.objects.all()).select_related("organization").order_by("name", "id")

    def get_template(self, pk: str) -> Template:
        template = self.templates().filter(pk=parse_uuid(pk, "template")).first()
        if template is None:
            raise exceptions.NotFound("No such template.")
        return template


class TemplateListView(TemplateAPIView, generics.GenericAPIView[Template]):
    """Message templates, by name; create one. A body may use ``{first_name}``, ``{last_name}`` and ``{link}``;
    every message also names the sender and says how to opt out, so the body need not."""

    queryset = Template.objects.none()  # the real one depends on the caller: see templates()
    serializer_class = TemplateSerializer
    filter_backends: list[Any] = []

    @extend_schema(parameters=PAGE_PARAMETERS, responses=TemplateSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.templates()) or []
        return self.get_paginated_response(represent_many(TemplateSerializer, page))

    @extend_schema(request=TemplateInputSerializer, responses={201: TemplateSerializer, 403: LAUNCH_FORBIDDEN})
    def post(self, request: Request) -> Response:
        data = request_object(request)
        refuse_unknown(data, tuple(TemplateInputSerializer().fields))
        incoming = TemplateInputSerializer(data=data)
        incoming.is_valid(raise_exception=True)
        template = template_create(organization=self.tenant.require_organization(), **incoming.validated_data)
        return Response(TemplateSerializer(self.get_template(str(template.pk))).data, status=status.HTTP_201_CREATED)


class TemplateDetailView(TemplateAPIView):
    """One template: read, change its name or body (campaigns already launched keep the messages they composed),
    delete it. A template a launched campaign uses cannot be deleted (409); draft campaigns using it lose it."""

    @extend_schema(parameters=[TEMPLATE_ID], responses={200: TemplateSerializer, 404: TEMPLATE_NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        return Response(TemplateSerializer(self.get_template(pk)).data)

    @extend_schema(
        parameters=[TEMPLATE_ID],
        request=TemplateInputSerializer(partial=True),
        responses={200: TemplateSerializer, 404: TEMPLATE_NOT_FOUND},
    )
    def patch(self, request: Request, pk: str) -> Response:
        template = self.get_template(pk)
        data = request_object(request)
        refuse_unknown(data, tuple(TemplateInputSerializer().fields))
        incoming = TemplateInputSerializer(data=data, partial=True)
        incoming.is_valid(raise_exception=True)
        template_update(template=template, **incoming.validated_data)
        return Response(TemplateSerializer(self.get_template(pk)).data)

    @extend_schema(parameters=[TEMPLATE_ID], responses={204: None, 404: TEMPLATE_NOT_FOUND, 409: CONFLICT})
    def delete(self, request: Request, pk: str) -> Response:
        template_delete(template=self.get_template(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- sending numbers ---------------------------------------------------------------------------------------------


class NumberAPIView(SmsAPIView):
    def numbers(self) -> QuerySet[SendingNumber]:
        return (
            SendingNumber.objects.filter(organization__in=self.visible_organizations())
            .select_related("organization")
            .order_by("phone_e164")
        )

    def represent(self, numbers: list[SendingNumber]) -> list[Any]:
        return represent_many(SendingNumberSerializer, numbers, today=numbers_today(numbers, timezone.now()))


class NumberListView(NumberAPIView, generics.GenericAPIView[SendingNumber]):
    """The organization's sending numbers (staff add them), each with its day so far in the organization's zone:
    its warm-up day, the most it may send today and how many it has sent."""

    queryset = SendingNumber.objects.none()  # see numbers()
    serializer_class = SendingNumberSerializer
    filter_backends: list[Any] = []

    @extend_schema(parameters=PAGE_PARAMETERS, responses=SendingNumberSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.numbers()) or []
        return self.get_paginated_response(self.represent(page))


class NumberDetailView(NumberAPIView):
    """One sending number and its day so far."""

    @extend_schema(parameters=[NUMBER_ID], responses={200: SendingNumberSerializer, 404: NUMBER_NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        number = self.numbers().filter(pk=parse_uuid(pk, "number")).first()
        if number is None:
            raise exceptions.NotFound("No such number.")
        return Response(self.represent([number])[0])


# -- campaigns ---------------------------------------------------------------------------------------------------


class CampaignAPIView(SmsAPIView):
    def campaigns(self) -> QuerySet[Campaign]:
        return (
            self.scoped(Campaign.objects.all())
            .select_related("organization")
            .prefetch_related(
                Prefetch("template_links", CampaignTemplate.objects.order_by("position", "id")),
                Prefetch("number_links", CampaignNumber.objects.order_by("id")),
            )
            .order_by("-created_at", "-id")
        )

    def get_campaign(self, pk: str) -> Campaign:
        campaign = self.campaigns().filter(pk=parse_uuid(pk, "campaign")).first()
        if campaign is None:
            raise exceptions.NotFound("No such campaign.")
        return campaign


class CampaignListView(CampaignAPIView, generics.GenericAPIView[Campaign]):
    """Campaigns, newest first (filter ``status``); create one as a draft. A campaign sends its templates in turn
    from its numbers to the consenting contacts with any of ``audience_tags`` (all consenting contacts when empty),
    from ``start_at`` (now when empty) once launched."""

    queryset = Campaign.objects.none()  # see campaigns()
    serializer_class = CampaignSerializer
    filter_backends: list[Any] = []

    @extend_schema(
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=CampaignStatus.values), *PAGE_PARAMETERS],
        responses=CampaignSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        campaigns = self.campaigns()
        if wanted := choice_filter(request.query_params, "status", CampaignStatus.values):
            campaigns = campaigns.filter(status=wanted)
        page = self.paginate_queryset(campaigns) or []
        return self.get_paginated_response(represent_many(CampaignSerializer, page))

    @extend_schema(request=CampaignInputSerializer, responses={201: CampaignSerializer, 403: LAUNCH_FORBIDDEN})
    def post(self, request: Request) -> Response:
        data = request_object(request)
        refuse_unknown(data, tuple(CampaignInputSerializer().fields))
        incoming = CampaignInputSerializer(data=data)
        incoming.is_valid(raise_exception=True)
        campaign = campaign_create(
            organization=self.tenant.require_organization(), actor=self.caller.user, **incoming.validated_data
        )
        return Response(CampaignSerializer(self.get_campaign(str(campaign.pk))).data, status=status.HTTP_201_CREATED)


class CampaignDetailView(CampaignAPIView):
    """One campaign."""

    @extend_schema(parameters=[CAMPAIGN_ID], responses={200: CampaignSerializer, 404: CAMPAIGN_NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        return Response(CampaignSerializer(self.get_campaign(pk)).data)


Move = Callable[..., Any]


class CampaignActionView(CampaignAPIView):
    """Changes a campaign's state: ``action`` (each subclass's) names the service that does it."""

    action: ClassVar[str] = ""
    moves: ClassVar[dict[str, Move]] = {
        "launch": campaign_launch,
        "pause": campaign_pause,
        "resume": campaign_resume,
        "cancel": campaign_cancel,
    }

    def post(self, request: Request, pk: str) -> Response:
        campaign = self.get_campaign(pk)
        actor: User | None = self.caller.user
        outcome = self.moves[self.action](campaign=campaign, actor=actor)
        shown = CampaignSerializer(self.get_campaign(pk)).data
        if self.action == "launch":
            return Response({"jobs_created": outcome, "campaign": shown})
        return Response(shown)


ACTION_RESPONSES = {403: LAUNCH_FORBIDDEN, 404: CAMPAIGN_NOT_FOUND, 409: CONFLICT}


def _action_schema(answer: Any) -> Any:
    return extend_schema_view(
        post=extend_schema(parameters=[CAMPAIGN_ID], request=None, responses={200: answer, **ACTION_RESPONSES})
    )


@_action_schema(CampaignLaunchSerializer)
class CampaignLaunchView(CampaignActionView):
    """Launch a campaign: one send job per consenting audience contact, then RUNNING (SCHEDULED until
    ``start_at``); answers the campaign and ``jobs_created``. Launching again adds jobs only for contacts who joined
    the audience since (0 otherwise). A completed or canceled campaign is 409."""

    action = "launch"


@_action_schema(CampaignSerializer)
class CampaignPauseView(CampaignActionView):
    """Pause a scheduled or running campaign: nothing more is sent until it is resumed (pausing a paused campaign
    changes nothing). A draft, completed or canceled campaign is 409."""

    action = "pause"


@_action_schema(CampaignSerializer)
class CampaignResumeView(CampaignActionView):
    """Resume a paused campaign: the messages the pause held go at once (unless the kill switch is on). Only a
    paused campaign resumes (409 otherwise; resuming a running one changes nothing)."""

    action = "resume"


@_action_schema(CampaignSerializer)
class CampaignCancelView(CampaignActionView):
    """Cancel a campaign for good: messages not yet sent never will be. A completed campaign is 409."""

    action = "cancel"


class CampaignStatsView(CampaignAPIView):
    """A campaign's results: jobs per state, gate hits, cost, delivery and click-through rates, opt-outs.

    ``cost`` is the exact sum of its messages' costs rounded half-up to the cent once; ``delivery_rate`` is
    DELIVERED / (SENT + DELIVERED + FAILED); ``ctr_human`` counts the messages whose link a person clicked and
    ``ctr_all`` those clicked at all (link-preview fetchers and other bots included), both divided by DELIVERED.
    Rates are null while their divisor is 0."""

    @extend_schema(parameters=[CAMPAIGN_ID], responses={200: CampaignStatsSerializer, 404: CAMPAIGN_NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        campaigns = self.scoped(Campaign.objects.all()).select_related("organization")
        campaign = campaigns.filter(pk=parse_uuid(pk, "campaign")).first()
        if campaign is None:
            raise exceptions.NotFound("No such campaign.")
        return Response(campaign_stats(campaign))


# -- messages ----------------------------------------------------------------------------------------------------


MESSAGE_FILTERS = [
    OpenApiParameter("campaign", OpenApiTypes.UUID, description="Only this campaign's messages."),
    OpenApiParameter("state", OpenApiTypes.STR, enum=JobState.values, description="Only messages in this state."),
    OpenApiParameter("contact", OpenApiTypes.UUID, description="Only the messages to this contact."),
]


class MessageAPIView(SmsAPIView):
    def messages(self) -> QuerySet[SendJob]:
        jobs = self.scoped(SendJob.objects.all()).select_related("organization", "contact", "number")
        return with_clicks(jobs).order_by("-id")


class MessageListView(MessageAPIView, generics.GenericAPIView[SendJob]):
    """Campaign messages (send jobs), newest first; filters ``campaign``, ``state`` and ``contact``. ``reason``
    names the gate that last held or skipped a message; ``cost`` keeps the four decimals messages are priced in."""

    queryset = SendJob.objects.none()  # see messages()
    serializer_class = MessageSerializer
    filter_backends: list[Any] = []

    @extend_schema(parameters=[*MESSAGE_FILTERS, *PAGE_PARAMETERS], responses=MessageSerializer(many=True))
    def get(self, request: Request) -> Response:
        params = request.query_params
        jobs = self.messages()
        if campaign := uuid_filter(params, "campaign"):
            jobs = jobs.filter(campaign_id=campaign)
        if contact := uuid_filter(params, "contact"):
            jobs = jobs.filter(contact_id=contact)
        if state := choice_filter(params, "state", JobState.values):
            jobs = jobs.filter(state=state)
        page = self.paginate_queryset(jobs) or []
        return self.get_paginated_response(represent_many(MessageSerializer, page))


class MessageDetailView(MessageAPIView):
    """One campaign message."""

    @extend_schema(parameters=[MESSAGE_ID], responses={200: MessageSerializer, 404: MESSAGE_NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        if not str(pk).isdigit() or len(str(pk)) > 18:
            raise exceptions.NotFound("No such message.")
        job = self.messages().filter(pk=int(pk)).first()
        if job is None:
            raise exceptions.NotFound("No such message.")
        return Response(MessageSerializer(job).data)


# -- the kill switch ---------------------------------------------------------------------------------------------


class KillSwitchView(SmsAPIView):
    """The organization's kill switch: while it is on, nothing is sent. Turning it off sends what it held at once.
    Both answers carry the organization's SMS budget (spent today and this month, caps, credits, alerts)."""

    def state(self, organization: Organization) -> dict[str, Any]:
        enabled = sms_settings(organization).kill_switch
        return {"enabled": enabled, "budget": budget_view(organization, timezone.now())}

    @extend_schema(responses={200: KillSwitchSerializer})
    def get(self, request: Request) -> Response:
        return Response(self.state(self.tenant.require_organization()))

    @extend_schema(request=KillSwitchInputSerializer, responses={200: KillSwitchSerializer, 403: LAUNCH_FORBIDDEN})
    def post(self, request: Request) -> Response:
        data = request_object(request)
        refuse_unknown(data, tuple(KillSwitchInputSerializer().fields))
        incoming = KillSwitchInputSerializer(data=data)
        incoming.is_valid(raise_exception=True)
        organization = self.tenant.require_organization()
        kill_switch_set(organization=organization, enabled=incoming.validated_data["enabled"], actor=self.caller.user)
        return Response(self.state(organization))


template_list_view = TemplateListView.as_view()
template_detail_view = TemplateDetailView.as_view()
number_list_view = NumberListView.as_view()
number_detail_view = NumberDetailView.as_view()
campaign_list_view = CampaignListView.as_view()
campaign_detail_view = CampaignDetailView.as_view()
campaign_launch_view = CampaignLaunchView.as_view()
campaign_pause_view = CampaignPauseView.as_view()
campaign_resume_view = CampaignResumeView.as_view()
campaign_cancel_view = CampaignCancelView.as_view()
campaign_stats_view = CampaignStatsView.as_view()
message_list_view = MessageListView.as_view()
message_detail_view = MessageDetailView.as_view()
kill_switch_view = KillSwitchView.as_view()
