"""The admin login door: failed logins are audited and throttled.

Every failed admin login is written to the audit log (action `admin-login-failed`, the username
tried as actor, the client address as target). After MAGLEV_LOGIN_MAX_FAILURES failures for one
username from one address within MAGLEV_LOGIN_LOCKOUT_MINUTES, that username is refused from
that address for MAGLEV_LOGIN_LOCKOUT_MINUTES, without its password being checked, and the
login page says so and for how long (audited once per lockout as `admin-login-refused`).

The counters live in Django's cache (the default: this process's memory, which is exact for the
one web process maglevd or Daphne runs; a restart forgets them). The client address is
REMOTE_ADDR: behind a reverse proxy that is the proxy's, so the throttle then counts per
username (the X-Forwarded-For a client sent is recorded in the audit detail, not trusted).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from .models import AuditEntry, Door

FAILED = "admin-login-failed"
REFUSED = "admin-login-refused"
DENIED = "admin-action-refused"


def max_failures() -> int:
    return int(getattr(settings, "MAGLEV_LOGIN_MAX_FAILURES", 5))


def lockout_seconds() -> int:
    return int(getattr(settings, "MAGLEV_LOGIN_LOCKOUT_MINUTES", 15)) * 60


def client_address(request: HttpRequest | None) -> str:
    return (request.META.get("REMOTE_ADDR") if request is not None else None) or "unknown"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def audit(
    request: HttpRequest | None,
    actor: str,
    action: str,
    target: str,
    error: str,
    **detail: Any,
) -> None:
    """One refused admin request in the audit log (the service layer records what it does)."""
    if request is not None and (forwarded := request.META.get("HTTP_X_FORWARDED_FOR")):
        detail["x_forwarded_for"] = _clip(forwarded, 200)
    AuditEntry.objects.create(
        actor=_clip(actor or "anonymous", 150),
        door=Door.ADMIN,
        action=action,
        target=_clip(target, 255),
        detail=detail,
        ok=False,
        error=error,
    )


def _keys(username: str, address: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{username.casefold()}\0{address}".encode()).hexdigest()[:40]
    return f"maglev-login-failures:{digest}", f"maglev-login-locked:{digest}"


def locked_for(username: str, address: str) -> int:
    """Seconds until `username` may try again from `address` (0: it may now)."""
    until = cache.get(_keys(username, address)[1])
    if until is None:
        return 0
    return max(1, math.ceil(until - time.time()))


def record_failure(request: HttpRequest, username: str, reason: str) -> int:
    """Count and audit a failed login; returns the failures counted in the current window."""
    address = client_address(request)
    count_key, lock_key = _keys(username, address)
    window = lockout_seconds()
    cache.add(count_key, 0, window)
    try:
        failures = cache.incr(count_key)
    except ValueError:  # expired between add and incr
        cache.set(count_key, 1, window)
        failures = 1
    locked = failures >= max_failures()
    if locked:
        cache.set(lock_key, time.time() + window, window)
        cache.delete(count_key)
    audit(request, username, FAILED, address, reason, failures=failures, locked=locked)
    return failures


def record_success(request: HttpRequest, username: str) -> None:
    cache.delete(_keys(username, client_address(request))[0])


def _minutes(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class GuardedAdminLoginForm(AdminAuthenticationForm):
    """Admin's login form, audited and throttled (AdminSite.login_form)."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": (
            "Too many failed logins for this username from your address. Try again in %(wait)s."
        ),
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        if username:
            wait = locked_for(username, client_address(self.request))
            if wait:
                self._note_refused(username, wait)
                raise ValidationError(
                    self.error_messages["throttled"],
                    code="throttled",
                    params={"wait": _minutes(wait)},
                )
        try:
            data = super().clean()
        except ValidationError as exc:
            if username:
                record_failure(self.request, username, "; ".join(exc.messages))
            raise
        if self.user_cache is not None:
            record_success(self.request, username)
        return data

    def _note_refused(self, username: str, wait: int) -> None:
        address = client_address(self.request)
        flag = f"{_keys(username, address)[1]}:audited"
        if cache.add(flag, 1, wait):  # once per lockout: a client hammering adds no rows
            audit(
                self.request,
                username,
                REFUSED,
                address,
                "too many failed logins",
                retry_after=wait,
            )
