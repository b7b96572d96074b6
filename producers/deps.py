"""Annotated dependencies, so that routes just declare what they need."""

from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from producers.services import ReceiverServices
from schemas.access import Principal
from schemas.identifiers import TenantId


def get_services(request: Request) -> ReceiverServices:
    services: ReceiverServices = request.app.state.services
    return services


Services = Annotated[ReceiverServices, Depends(get_services)]

Tenant = Annotated[
    TenantId,
    Header(
        alias="X-Tenant-ID",
        description="Which tenant's signing secrets check this webhook; the signature, not the header, decides.",
    ),
]


_bearer = HTTPBearer(auto_error=False, description="An API token of the tenant: `zixly tokens create`.")


async def get_caller(
    request: Request,
    services: Services,
    _token: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    _tenant: Annotated[
        str | None,
        Header(
            alias="X-Tenant-ID",
            max_length=64,
            description="Development only, for a tenant that is not registered: reads without a token.",
        ),
    ] = None,
) -> Principal:
    return await services.callers.identify(request.headers)


Caller = Annotated[Principal, Depends(get_caller)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Unsigned webhooks only: a redelivery with the same key maps to the same job id (a signed "
        "webhook's webhook-id is its key).",
    ),
]
