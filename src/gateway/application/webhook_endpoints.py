"""Webhook endpoint handlers: create (secret shown once), delete, rotate, redeliver."""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.application.merchant_events import fan_out
from gateway.application.ports import Clock, IdGenerator, UnitOfWork
from gateway.application.webhook_ports import Resolver, SecretBox, StoredSecret
from gateway.domain.commands import (
    CreateWebhookEndpoint,
    CreateWebhookEndpointError,
    DeleteWebhookEndpoint,
    IssuedEndpoint,
    RedeliverEvent,
    Redelivery,
    RotateWebhookSecret,
)
from gateway.domain.errors import FieldError, NotFound, ValidationFailed
from gateway.domain.result import Err, Ok, Result
from gateway.domain.webhook_url import (
    UrlInvalid,
    UrlNotAllowed,
    WebhookUrl,
    address_allowed,
    parse_url,
)
from gateway.domain.webhooks import ROTATION_OVERLAP, EventType, PlainSecret, WebhookEndpoint

URL_INVALID = "url_invalid"


@dataclass(frozen=True, slots=True)
class WebhookEndpointDeps:
    clock: Clock
    ids: IdGenerator
    box: SecretBox
    resolver: Resolver
    allow_internal: bool = False


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    url: WebhookUrl
    events: tuple[EventType, ...]


def parse_endpoint_request(body: object) -> Result[EndpointRequest, ValidationFailed | UrlInvalid]:
    """Every invalid field at once (`400`); when the URL is the only one, and it is there
    but not an absolute http(s) URL (whatever its JSON type), it is `422 url_invalid`."""
    if not isinstance(body, dict):
        error = FieldError("body", "validation_error", "must be a JSON object")
        return Err(ValidationFailed((error,)))
    errors: list[FieldError] = []
    url = _url(body.get("url"), errors)
    raw_events = body.get("events")
    events = tuple(EventType) if raw_events is None else _events(raw_events, errors)
    if len(errors) == 1 and errors[0].code == URL_INVALID:
        return Err(UrlInvalid(errors[0].message))
    if errors or url is None:
        return Err(ValidationFailed(tuple(errors)))
    return Ok(EndpointRequest(url, events))


def _url(raw: object, errors: list[FieldError]) -> WebhookUrl | None:
    if raw is None:
        errors.append(FieldError("url", "field_required", "url is required"))
        return None
    match parse_url(raw if isinstance(raw, str) else ""):
        case Err(invalid):
            errors.append(FieldError("url", URL_INVALID, invalid.message))
            return None
        case Ok(url):
            return url


def _events(raw: object, errors: list[FieldError]) -> tuple[EventType, ...]:
    allowed = ", ".join(EventType)
    message = f"must be a non-empty list of event types: {allowed}"
    if not isinstance(raw, list) or not raw:
        errors.append(FieldError("events", "validation_error", message))
        return ()
    known = set(EventType.__members__.values())
    for index, item in enumerate(raw):
        if not isinstance(item, str) or item not in known:
            errors.append(FieldError(f"events[{index}]", "validation_error", message))
    chosen = {EventType(item) for item in raw if isinstance(item, str) and item in known}
    return tuple(event for event in EventType if event in chosen)


async def check_url(
    url: WebhookUrl, resolver: Resolver, *, allow_internal: bool
) -> Result[WebhookUrl, UrlNotAllowed]:
    if allow_internal:
        return Ok(url)
    if not url.is_https:
        return Err(UrlNotAllowed("the URL must use https"))
    match address_allowed(await resolver.resolve(url.host, url.port)):
        case Err(not_allowed):
            return Err(not_allowed)
        case Ok():
            return Ok(url)


async def create_endpoint(
    cmd: CreateWebhookEndpoint, uow: UnitOfWork, *, deps: WebhookEndpointDeps
) -> Result[IssuedEndpoint, CreateWebhookEndpointError]:
    match parse_endpoint_request(cmd.body):
        case Err(invalid):
            return Err(invalid)
        case Ok(request):
            pass
    match await check_url(request.url, deps.resolver, allow_internal=deps.allow_internal):
        case Err(refused):
            return Err(refused)
        case Ok(url):
            pass
    now = deps.clock.now()
    endpoint = WebhookEndpoint(deps.ids.new("we"), cmd.merchant_id, url.value, request.events, now)
    async with uow:
        uow.webhook_endpoints.add(endpoint)
        secret = _new_secret(uow, endpoint.id, deps)
        await uow.commit()
    return Ok(IssuedEndpoint(endpoint, secret))


def _new_secret(uow: UnitOfWork, endpoint_id: str, deps: WebhookEndpointDeps) -> PlainSecret:
    secret = PlainSecret.generate()
    sealed = deps.box.seal(endpoint_id, secret.value)
    stored = StoredSecret(deps.ids.new("whs"), endpoint_id, sealed, deps.clock.now())
    uow.webhook_endpoints.add_secret(stored)
    return secret


async def delete_endpoint(
    cmd: DeleteWebhookEndpoint, uow: UnitOfWork, *, deps: WebhookEndpointDeps
) -> Result[None, NotFound]:
    async with uow:
        if await uow.webhook_endpoints.get(cmd.merchant_id, cmd.endpoint_id) is None:
            return Err(NotFound("webhook endpoint"))
        await uow.webhook_endpoints.delete(cmd.endpoint_id, deps.clock.now())
        await uow.commit()
    return Ok(None)


async def rotate_secret(
    cmd: RotateWebhookSecret, uow: UnitOfWork, *, deps: WebhookEndpointDeps
) -> Result[IssuedEndpoint, NotFound]:
    """The old secrets keep signing alongside the new one for `ROTATION_OVERLAP`."""
    async with uow:
        endpoint = await uow.webhook_endpoints.get(cmd.merchant_id, cmd.endpoint_id)
        if endpoint is None:
            return Err(NotFound("webhook endpoint"))
        now = deps.clock.now()
        await uow.webhook_endpoints.expire_secrets(endpoint.id, now + ROTATION_OVERLAP)
        secret = _new_secret(uow, endpoint.id, deps)
        await uow.commit()
    return Ok(IssuedEndpoint(endpoint, secret))


async def redeliver_event(
    cmd: RedeliverEvent, uow: UnitOfWork, *, deps: WebhookEndpointDeps
) -> Result[Redelivery, NotFound]:
    async with uow:
        event = await uow.events.get(cmd.merchant_id, cmd.event_id)
        if event is None:
            return Err(NotFound("event"))
        deliveries = await fan_out(uow, event, deps.ids, deps.clock.now())
        await uow.commit()
    return Ok(Redelivery(event.id, tuple(replace(d) for d in deliveries)))
