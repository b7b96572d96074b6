"""Annotated dependencies, so that routes just declare what they need."""

from typing import Annotated

from fastapi import Depends, Header, Request

from producers.services import ReceiverServices
from schemas.identifiers import TenantId


def get_services(request: Request) -> ReceiverServices:
    services: ReceiverServices = request.app.state.services
    return services


Services = Annotated[ReceiverServices, Depends(get_services)]

Tenant = Annotated[
    TenantId,
    Header(
        alias="X-Tenant-ID",
        description="The integrator's tenant (until signed webhooks carry it).",
    ),
]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="A redelivery with the same key maps to the same job id.",
    ),
]
