"""Master key rotation: every sealed value in the database gets its data key wrapped by the newest master key.

Rotate by putting a new key first in ``ZIXLY_MASTER_KEYS`` (keeping the old ones after it), restarting the
services, running ``zixly keys rotate``, and then removing the old keys. Values are never decrypted to disk.
"""

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.database import EVERY_TENANT, scoped
from kernel.secret_box import SecretBox


@dataclass(frozen=True)
class SealedColumn:
    table: str
    key: str
    column: str


SEALED_COLUMNS = (
    SealedColumn("tenant_webhook_secrets", "id", "secret_sealed"),
    SealedColumn("tenants", "id", "notify_slack_webhook_url"),
    SealedColumn("tenant_secrets", "id", "value_sealed"),
)


async def key_usage(engine: AsyncEngine) -> Counter[str]:
    """How many sealed values each master key id wraps."""
    usage: Counter[str] = Counter()
    async with scoped(engine, EVERY_TENANT) as connection:
        for sealed in SEALED_COLUMNS:
            rows = await connection.execute(
                text(f"SELECT {sealed.column} FROM {sealed.table} WHERE {sealed.column} IS NOT NULL")
            )
            usage.update(SecretBox.key_id_of(value) for (value,) in rows)
    return usage


async def rotate(engine: AsyncEngine, box: SecretBox) -> dict[str, int]:
    """Re-wraps every value not yet under the current master key; returns how many per table."""
    changed: dict[str, int] = {}
    async with scoped(engine, EVERY_TENANT) as connection:
        for sealed in SEALED_COLUMNS:
            rows = (
                await connection.execute(
                    text(
                        f"SELECT {sealed.key}, {sealed.column} FROM {sealed.table} "
                        f"WHERE {sealed.column} IS NOT NULL FOR UPDATE"
                    )
                )
            ).all()
            count = 0
            for key, value in rows:
                rewrapped = box.rewrap(value)
                if rewrapped != value:
                    await connection.execute(
                        text(f"UPDATE {sealed.table} SET {sealed.column} = :value WHERE {sealed.key} = :key"),
                        {"value": rewrapped, "key": key},
                    )
                    count += 1
            changed[sealed.table] = count
    return changed
