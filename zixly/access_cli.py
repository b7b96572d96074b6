"""``zixly tenants / tokens / users / keys / audit``: who may do what, managed by operators.

Every change is written to the audit log as ``cli:<operating-system user>``. Secrets, tokens and passwords are
shown once, when they are made, and stored only sealed or hashed.
"""

import dataclasses
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.api_tokens import ApiTokens, parse_duration
from identity.audit import AuditEntry, cli_actor, record
from identity.tenant_secrets import TenantSecretStore
from identity.tenants import TenantDirectory, TenantLimits, limit_text
from kernel.database import EVERY_TENANT, TenantScope, make_engine, run_with_engine
from kernel.environment import checked_settings
from kernel.secret_box import SecretBox, generate_master_key
from kernel.settings import Settings
from schemas.access import TOKEN_ROLES, Role
from schemas.jobs import SECRET_NAME_PATTERN

console = Console()
T = TypeVar("T")

tenants_app = typer.Typer(help="Tenants and the secrets that sign their webhooks.", no_args_is_help=True)
tokens_app = typer.Typer(
    help="API tokens: how integrators read their jobs (Authorization: Bearer).", no_args_is_help=True
)
users_app = typer.Typer(help="The dashboard's users.", no_args_is_help=True)
keys_app = typer.Typer(help="Master keys that seal secrets at rest.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: who did what, when, from where.", no_args_is_help=True)


def _with_engine(work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    return run_with_engine(checked_settings(), work)


def _box() -> SecretBox:
    return SecretBox.from_text(checked_settings().master_keys.get_secret_value())


def _audit(
    engine: AsyncEngine, action: str, tenant_id: str | None, target: str | None, **detail: object
) -> Awaitable[None]:
    return record(engine, AuditEntry(cli_actor(), action, tenant_id, target, detail=dict(detail)))


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]✗[/] {message}")
    return typer.Exit(1)


# -- tenants ---------------------------------------------------------------------------------------------------------


@tenants_app.command("create")
def tenants_create(
    tenant_id: Annotated[str, typer.Argument(help="the id integrators send in X-Tenant-ID")],
    name: Annotated[str | None, typer.Option(help="a readable name")] = None,
) -> None:
    """Register a tenant; prints its first signing secret (shown once)."""

    async def work(engine: AsyncEngine) -> str:
        secret = await TenantDirectory(engine, _box()).create(tenant_id, name or tenant_id)
        await _audit(engine, "tenant.create", tenant_id, tenant_id)
        return secret

    try:
        secret = _with_engine(work)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"[green]✓[/] tenant {tenant_id} created; its webhook secret (shown once):")
    console.print(secret, highlight=False, soft_wrap=True)


@tenants_app.command("rotate")
def tenants_rotate(
    tenant_id: Annotated[str, typer.Argument()],
    overlap_hours: Annotated[float, typer.Option(help="how long the current secrets keep working")] = 24.0,
) -> None:
    """A new signing secret; the current ones stay valid for the overlap, so senders can switch without a gap."""

    async def work(engine: AsyncEngine) -> str:
        secret = await TenantDirectory(engine, _box()).rotate(tenant_id, timedelta(hours=overlap_hours))
        await _audit(engine, "secret.rotate", tenant_id, tenant_id, overlap_hours=overlap_hours)
        return secret

    try:
        secret = _with_engine(work)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"[green]✓[/] new secret for {tenant_id} (the old ones expire in {overlap_hours:g} h):")
    console.print(secret, highlight=False, soft_wrap=True)


@tenants_app.command("notify")
def tenants_notify(
    tenant_id: Annotated[str, typer.Argument()],
    slack_webhook_url: Annotated[str | None, typer.Option(help="a Slack incoming-webhook URL")] = None,
    email: Annotated[str | None, typer.Option(help="addresses, comma-separated")] = None,
    on: Annotated[
        str, typer.Option(help="outcomes: completed, failed, dead_lettered, cancelled")
    ] = "failed,dead_lettered",
) -> None:
    """Where a tenant's job outcomes are sent: a Slack incoming webhook, e-mail addresses (through the relay)."""
    if slack_webhook_url:
        from kernel.outbound import internal_hosts
        from notifier.targets import slack_policy, slack_url_refusal

        policy = slack_policy(internal_hosts(checked_settings().outbound_internal_hosts))
        if refusal := slack_url_refusal(slack_webhook_url, policy, tenant_id):
            raise typer.BadParameter(refusal, param_hint="--slack-webhook-url")

    async def work(engine: AsyncEngine) -> None:
        await TenantDirectory(engine, _box()).set_notifications(tenant_id, slack_webhook_url, email, on)
        await _audit(
            engine,
            "tenant.notifications",
            tenant_id,
            tenant_id,
            on=on,
            email=email,
            slack=slack_webhook_url is not None,
        )

    try:
        _with_engine(work)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"[green]✓[/] {tenant_id} is notified on {on}")


@tenants_app.command("limits")
def tenants_limits(
    tenant_id: Annotated[str, typer.Argument()],
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="webhooks a second (ZIXLY_TENANT_RATE_PER_SECOND)")
    ] = None,
    burst: Annotated[int | None, typer.Option(min=1, help="webhooks at once (ZIXLY_TENANT_RATE_BURST)")] = None,
    in_flight: Annotated[
        int | None, typer.Option(min=1, help="jobs queued or running at most (ZIXLY_TENANT_MAX_IN_FLIGHT)")
    ] = None,
    sweep_backtests: Annotated[
        int | None, typer.Option(min=1, help="backtests in one sweep at most (ZIXLY_SWEEP_MAX_BACKTESTS)")
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="back to the deployment's defaults, then apply the rest")
    ] = False,
) -> None:
    """Show a tenant's limits, or change those given; receivers apply a change within seconds."""
    given: dict[str, Any] = {
        "rate_per_second": rate,
        "rate_burst": burst,
        "max_in_flight": in_flight,
        "max_sweep_backtests": sweep_backtests,
    }
    changes = {name: value for name, value in given.items() if value is not None}

    async def work(engine: AsyncEngine) -> TenantLimits:
        directory = TenantDirectory(engine, _box())
        current = TenantLimits() if reset else await directory.limits(tenant_id)
        if not changes and not reset:
            return current
        limits = dataclasses.replace(current, **changes)
        await directory.set_limits(tenant_id, limits)
        await _audit(engine, "tenant.limits", tenant_id, tenant_id, **dataclasses.asdict(limits))
        return limits

    try:
        limits = _with_engine(work)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    table = Table("limit", "value", title=f"limits of {tenant_id}")
    for name, value in _limit_cells(limits, checked_settings()):
        table.add_row(name, value)
    console.print(table)


def _limit_cells(limits: TenantLimits, settings: Settings) -> list[tuple[str, str]]:
    """Each limit with where it comes from: the tenant's own, or the deployment's default."""
    defaults = {
        "rate_per_second": settings.tenant_rate_per_second,
        "rate_burst": settings.tenant_rate_burst,
        "max_in_flight": settings.tenant_max_in_flight,
        "max_sweep_backtests": settings.sweep_max_backtests,
    }
    cells = []
    for name, default in defaults.items():
        own = getattr(limits, name)
        cells.append((name, limit_text(own) if own is not None else f"{limit_text(default)} (default)"))
    return cells


@tenants_app.command("list")
def tenants_list() -> None:
    """Tenants, how many secrets each has active, and its own limits."""
    settings = checked_settings()
    table = Table("id", "name", "active secrets", "rate/s", "burst", "in flight", "sweep backtests", title="tenants")
    for tenant_id, name, active, limits in _with_engine(lambda engine: TenantDirectory(engine, _box()).list()):
        table.add_row(tenant_id, name, str(active), *(value for _, value in _limit_cells(limits, settings)))
    console.print(table)


# -- tenants' named secrets ---------------------------------------------------------------------------------------

secrets_app = typer.Typer(
    help='Named secrets a tenant\'s jobs refer to ({"secret": "<name>"}); values are shown to no one.',
    no_args_is_help=True,
)
tenants_app.add_typer(secrets_app, name="secrets")


def _secret_store(engine: AsyncEngine) -> TenantSecretStore:
    return TenantSecretStore(engine, _box())


@secrets_app.command("set")
def secrets_set(
    tenant_id: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Argument(help="how jobs name it: letters, digits, '_', '.', '-'")],
    value_stdin: Annotated[bool, typer.Option(help="read the value from standard input (else: asked for)")] = False,
) -> None:
    """Store or replace a secret of the tenant; it is never printed, logged or put in an event."""
    if not re.fullmatch(SECRET_NAME_PATTERN, name):
        raise typer.BadParameter(f"{name!r}: 1 to 64 letters, digits, '_', '.' or '-'", param_hint="NAME")
    value = sys.stdin.readline().rstrip("\n") if value_stdin else typer.prompt("value", hide_input=True)

    async def work(engine: AsyncEngine) -> bool:
        replaced = await _secret_store(engine).set(tenant_id, name, value, cli_actor())
        await _audit(engine, "tenant.secret.set", tenant_id, name, replaced=replaced)
        return replaced

    try:
        replaced = _with_engine(work)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"[green]✓[/] secret {name} of {tenant_id} {'replaced' if replaced else 'stored'}; jobs name it "
        f'as {{"secret": "{name}"}}'
    )


@secrets_app.command("list")
def secrets_list(tenant_id: Annotated[str, typer.Argument()]) -> None:
    """The tenant's secrets by name, who set each and when (never the values)."""
    table = Table("name", "set by", "at", title=f"secrets of {tenant_id}")
    for name, by, at in _with_engine(lambda engine: _secret_store(engine).names(tenant_id)):
        table.add_row(name, by, f"{at:%Y-%m-%d %H:%M:%S %Z}")
    console.print(table)


@secrets_app.command("delete")
def secrets_delete(tenant_id: Annotated[str, typer.Argument()], name: Annotated[str, typer.Argument()]) -> None:
    """Remove a secret; jobs that name it fail with the reason until it is set again."""

    async def work(engine: AsyncEngine) -> bool:
        gone = await _secret_store(engine).delete(tenant_id, name)
        if gone:
            await _audit(engine, "tenant.secret.delete", tenant_id, name)
        return gone

    if not _with_engine(work):
        raise _fail(f"{tenant_id} has no secret {name!r}")
    console.print(f"[green]✓[/] secret {name} of {tenant_id} deleted")


# -- tokens ----------------------------------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    tenant: Annotated[str, typer.Option(help="the tenant whose jobs the token reads")],
    role: Annotated[Role, typer.Option(help="viewer, operator or tenant-admin")] = Role.VIEWER,
    name: Annotated[str | None, typer.Option(help="what the token is for")] = None,
    expires_in: Annotated[str | None, typer.Option(help="e.g. 90d, 12h; unset: no expiry")] = None,
) -> None:
    """A new API token; prints it once."""
    if role not in TOKEN_ROLES:
        raise typer.BadParameter(f"a token's role is one of {', '.join(TOKEN_ROLES)}", param_hint="--role")
    try:
        lifetime = parse_duration(expires_in) if expires_in else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires-in") from None

    async def work(engine: AsyncEngine) -> tuple[str, str]:
        if not await TenantDirectory(engine, _box()).exists(tenant):
            raise ValueError(f"unknown tenant {tenant!r}; create it with `zixly tenants create {tenant}`")
        info, token = await ApiTokens(engine).create(tenant, name or f"{role} token", role, cli_actor(), lifetime)
        await _audit(
            engine,
            "token.create",
            tenant,
            str(info.id),
            role=role.value,
            name=info.name,
            expires_at=info.expires_at.isoformat() if info.expires_at else None,
        )
        return str(info.id), token

    try:
        token_id, token = _with_engine(work)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"[green]✓[/] token {token_id} ({role}) for {tenant}; the token (shown once):")
    console.print(token, highlight=False, soft_wrap=True)


@tokens_app.command("list")
def tokens_list(tenant: Annotated[str | None, typer.Option(help="only this tenant's")] = None) -> None:
    """Tokens (never their secrets): role, state, expiry, last use."""
    tokens = _with_engine(lambda engine: ApiTokens(engine).list(tenant))
    table = Table(
        "id", "tenant", "name", "role", "state", "expires", "last used", "created by", title=f"{len(tokens)} token(s)"
    )
    for info in tokens:
        table.add_row(
            str(info.id),
            info.tenant_id,
            info.name,
            info.role.value,
            info.state,
            f"{info.expires_at:%Y-%m-%d %H:%M}" if info.expires_at else "never",
            f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "",
            info.created_by,
        )
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="the id `zixly tokens list` shows")]) -> None:
    """Revoke a token: its next request is refused."""
    try:
        parsed = uuid.UUID(token_id)
    except ValueError:
        raise typer.BadParameter("not a token id", param_hint="TOKEN_ID") from None

    async def work(engine: AsyncEngine) -> str:
        info = await ApiTokens(engine).revoke(parsed, None)
        await _audit(engine, "token.revoke", info.tenant_id, str(info.id), name=info.name)
        return info.tenant_id

    try:
        tenant = _with_engine(work)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"[green]✓[/] token {token_id} of {tenant} revoked")


# -- users -----------------------------------------------------------------------------------------------------------


def _password(password_stdin: bool, generate: bool) -> tuple[str, bool]:
    """The new password, and whether it was generated (and must be shown)."""
    if generate:
        import secrets

        return secrets.token_urlsafe(18), True
    if password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return typer.prompt("password", hide_input=True, confirmation_prompt=True), False


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="the login")],
    role: Annotated[Role, typer.Option(help="viewer, operator, tenant-admin or platform-admin")],
    tenant: Annotated[str | None, typer.Option(help="the user's tenant (none for a platform admin)")] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
    generate_password: Annotated[bool, typer.Option(help="make one up and print it once")] = False,
) -> None:
    """A dashboard user with a password (argon2id); the first platform admin is made this way."""
    from dashboard.users import UserDirectory

    password, show = _password(password_stdin, generate_password)
    settings = checked_settings()
    engine = make_engine(settings, pool_size=1)
    try:
        user = UserDirectory(engine).create(email, role, tenant, password)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    _with_engine(lambda e: _audit(e, "user.create", tenant, email, role=role.value))
    console.print(f"[green]✓[/] {user.email} ({user.role}{', ' + user.tenant_id if user.tenant_id else ''}) created")
    if show:
        console.print(f"password (shown once): {password}", highlight=False)


@users_app.command("reset-password")
def users_reset_password(
    email: Annotated[str, typer.Option(help="the login")],
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
    generate_password: Annotated[bool, typer.Option(help="make one up and print it once")] = False,
) -> None:
    """A new password; the user's sessions end."""
    from dashboard.sessions import end_sessions_of
    from dashboard.users import UserDirectory

    password, show = _password(password_stdin, generate_password)
    engine = make_engine(checked_settings(), pool_size=1)
    try:
        user = UserDirectory(engine).reset_password(email, password)
        ended = end_sessions_of(engine, user.id)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    _with_engine(lambda e: _audit(e, "user.reset_password", user.tenant_id, email, sessions_ended=ended))
    console.print(f"[green]✓[/] new password for {email}; {ended} session(s) ended")
    if show:
        console.print(f"password (shown once): {password}", highlight=False)


@users_app.command("disable")
def users_disable(email: Annotated[str, typer.Option(help="the login")]) -> None:
    """The user can no longer log in; their sessions end."""
    from dashboard.sessions import end_sessions_of
    from dashboard.users import UserDirectory

    engine = make_engine(checked_settings(), pool_size=1)
    try:
        user = UserDirectory(engine).set_disabled(email, True)
        ended = end_sessions_of(engine, user.id)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    _with_engine(lambda e: _audit(e, "user.disable", user.tenant_id, email, sessions_ended=ended))
    console.print(f"[green]✓[/] {email} disabled; {ended} session(s) ended")


@users_app.command("list")
def users_list(tenant: Annotated[str | None, typer.Option(help="only this tenant's")] = None) -> None:
    """Users, their roles and tenants."""
    from dashboard.users import UserDirectory

    engine = make_engine(checked_settings(), pool_size=1)
    try:
        users = UserDirectory(engine).list(TenantScope.of(tenant) if tenant else EVERY_TENANT)
    finally:
        engine.dispose()
    table = Table("e-mail", "role", "tenant", "sign-in", "state", title=f"{len(users)} user(s)")
    for user in users:
        table.add_row(
            user.email,
            user.role.value,
            user.tenant_id or "(all)",
            user.auth_provider,
            "disabled" if user.disabled_at else "active",
        )
    console.print(table)


# -- keys ------------------------------------------------------------------------------------------------------------


@keys_app.command("generate")
def keys_generate(
    key_id: Annotated[str | None, typer.Option(help="an id for the key (default: random)")] = None,
) -> None:
    """A new master key, to put first in ZIXLY_MASTER_KEYS."""
    console.print(generate_master_key(key_id), highlight=False, soft_wrap=True)


@keys_app.command("status")
def keys_status() -> None:
    """Which master keys wrap how many sealed values."""
    from zixly.key_rotation import key_usage

    box = _box()
    usage = _with_engine(key_usage)
    table = Table("master key", "sealed values", "current")
    for key_id, count in sorted(usage.items()):
        table.add_row(key_id, str(count), "✓" if key_id == box.current_key_id else "")
    console.print(table)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-wrap every sealed value under the first key of ZIXLY_MASTER_KEYS; then the older keys can go."""
    from zixly.key_rotation import rotate

    box = _box()

    async def work(engine: AsyncEngine) -> dict[str, int]:
        changed = await rotate(engine, box)
        await _audit(engine, "keys.rotate", None, box.current_key_id, rewrapped=changed)
        return changed

    changed = _with_engine(work)
    console.print(
        f"[green]✓[/] re-wrapped under {box.current_key_id}: "
        + ", ".join(f"{table} {count}" for table, count in changed.items())
    )


# -- audit -----------------------------------------------------------------------------------------------------------


@audit_app.command("list")
def audit_list(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's entries")] = None,
    action: Annotated[str | None, typer.Option(help="only this action, e.g. login.failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """The newest entries of the audit log."""
    from identity.audit import recent_entries

    engine = make_engine(checked_settings(), pool_size=1)
    try:
        rows = recent_entries(engine, TenantScope.of(tenant) if tenant else EVERY_TENANT, limit, action=action)
    finally:
        engine.dispose()
    table = Table("at", "tenant", "actor", "action", "target", "outcome", "from", title=f"{len(rows)} entries")
    for row in rows:
        table.add_row(
            f"{row['at']:%Y-%m-%d %H:%M:%S}",
            row["tenant_id"] or "",
            row["actor"],
            row["action"],
            row["target"] or "",
            row["outcome"],
            row["ip"] or "",
        )
    console.print(table)


@audit_app.command("prune")
def audit_prune(older_than: Annotated[str, typer.Option(help="e.g. 365d")]) -> None:
    """The retention job: delete entries older than this (the only deletion the audit log allows)."""
    from sqlalchemy import text

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None

    async def work(engine: AsyncEngine) -> int:
        async with engine.begin() as connection:
            await connection.execute(text("SELECT set_config('zixly.audit_retention', 'on', true)"))
            deleted = await connection.execute(
                text("DELETE FROM audit_log WHERE at < now() - make_interval(secs => :seconds)"),
                {"seconds": age.total_seconds()},
            )
        await _audit(engine, "audit.prune", None, None, older_than=older_than, deleted=deleted.rowcount)
        return int(deleted.rowcount)

    console.print(f"[green]✓[/] {_with_engine(work)} entries older than {older_than} deleted")
