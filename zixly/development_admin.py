"""The development stack's own platform admin, so that `zixly up` gives a newcomer a dashboard to log in to.

The password is made up on first start and kept in the stack's folder (readable by its owner only); the banner
prints it. Production never gets one: there the first admin is made with `zixly users create`.
"""

import os
import secrets

from dashboard.users import UserDirectory
from kernel.database import make_engine
from kernel.settings import Settings
from schemas.access import Role

DEV_ADMIN_EMAIL = "admin@zixly.localhost"
DEV_ADMIN_FILE = "dev-admin-password"


def development_admin(settings: Settings) -> tuple[str, str]:
    """The development admin's e-mail and password, creating the account (or a new password) when needed."""
    assert settings.development, "a development admin only on the development stack"
    password_file = settings.home / DEV_ADMIN_FILE
    if password_file.exists():
        password = password_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(12)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.write_text(password + "\n")
        os.chmod(password_file, 0o600)
    engine = make_engine(settings, pool_size=1)
    try:
        # The kept password is set again at every start: the account always opens with what the banner shows.
        UserDirectory(engine).create_or_reset(DEV_ADMIN_EMAIL, Role.PLATFORM_ADMIN, None, password)
    finally:
        engine.dispose()
    return DEV_ADMIN_EMAIL, password
