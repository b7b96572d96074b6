"""The development stack's own platform admin, so that `zixly up` gives a newcomer a dashboard to log in to.

The password is made up on first start and kept in the stack's folder (readable by its owner only); the banner
prints it. Production never gets one: there the first admin is made with `zixly users create`.
"""

import os
import secrets

from sqlalchemy import func, select

from dashboard.users import UserDirectory
from kernel.database import EVERY_TENANT, make_engine, scoped_sync
from kernel.settings import Settings
from schemas.access import Role
from schemas.identity_tables import dashboard_users

DEV_ADMIN_EMAIL = "admin@zixly.localhost"
DEV_ADMIN_FILE = "dev-admin-password"


def development_admin(settings: Settings) -> tuple[str, str]:
    """The development admin's e-mail and password, creating the account (or a new password) when needed."""
    assert settings.development, "a development admin only on the development stack"
    password_file = settings.home / DEV_ADMIN_FILE
    engine = make_engine(settings, pool_size=1)
    try:
        users = UserDirectory(engine)
        with scoped_sync(engine, EVERY_TENANT) as connection:
            exists = connection.execute(
                select(dashboard_users.c.id).where(func.lower(dashboard_users.c.email) == DEV_ADMIN_EMAIL)
            ).first()
        if exists is not None and password_file.exists():
            return DEV_ADMIN_EMAIL, password_file.read_text().strip()
        password = secrets.token_urlsafe(12)
        if exists is None:
            users.create(DEV_ADMIN_EMAIL, Role.PLATFORM_ADMIN, None, password)
        else:
            users.reset_password(DEV_ADMIN_EMAIL, password)
    finally:
        engine.dispose()
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.write_text(password + "\n")
    os.chmod(password_file, 0o600)
    return DEV_ADMIN_EMAIL, password
