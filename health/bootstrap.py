"""First-run chores of the embedded daemon: the schema, and an admin login printed once."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command

ADMIN_USER: str = "admin"


def migrate_quietly() -> None:
    call_command("migrate", interactive=False, verbosity=0)


def ensure_admin_user() -> str | None:
    """Create `admin` with a random password when no superuser exists; return that password.

    The password is never stored in clear and never fixed; it is shown once. A lost one is
    reset with `python manage.py changepassword admin`.
    """
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    users.objects.create_superuser(ADMIN_USER, email="", password=password)
    return password
