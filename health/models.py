"""The database: each deployment's config (as maglev.yaml holds it), its runtime state and audit.

Config models mirror `health.config.spec`; `health.config_db` converts between the two. Runtime
state (BackendState, Transition) and operator intent live beside the config so that a restart
keeps them. Durations are stored as float seconds.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.deconstruct import deconstructible

from .checker.states import State
from .config import validators
from .config.spec import (
    DEFAULT_FALL,
    DEFAULT_INTERVAL,
    DEFAULT_RISE,
    DEFAULT_STARTUP_MAX_DELAY,
    DEFAULT_STARTUP_MIN_DELAY,
    DEFAULT_SYNC_INTERVAL,
    DEFAULT_TIMEOUT,
    DEFAULT_TRANSITION_HISTORY,
    DEFAULT_WEIGHT,
    CheckType,
    Protocol,
)

NAME_HELP = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."


@deconstructible
class Rule:
    """A model-field validator that runs one rule of `health.config.validators`, the very rule
    the YAML loader applies, so admin refuses what a file may not say, with the same message."""

    def __init__(self, rule: str) -> None:
        if not callable(getattr(validators, rule, None)):
            raise ValueError(f"health.config.validators has no rule {rule!r}")
        self.rule = rule

    def __call__(self, value: Any) -> None:
        try:
            getattr(validators, self.rule)(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code=self.rule) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and other.rule == self.rule

    def __hash__(self) -> int:
        return hash(self.rule)


NAME = Rule("name")


class Deployment(models.Model):
    """One VPP load-balancer host: its lb global settings and probe namespace (the VPP
    sockets are the process's settings, MAGLEV_VPP_API_ADDR and MAGLEV_VPP_STATS_ADDR)."""

    name = models.CharField(max_length=64, unique=True, help_text=NAME_HELP, validators=[NAME])
    ipv4_src_address = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    ipv6_src_address = models.GenericIPAddressField(protocol="IPv6", null=True, blank=True)
    sync_interval = models.FloatField(
        default=DEFAULT_SYNC_INTERVAL, validators=[MinValueValidator(0.001)], help_text="seconds"
    )
    startup_min_delay = models.FloatField(
        default=DEFAULT_STARTUP_MIN_DELAY, validators=[MinValueValidator(0)], help_text="seconds"
    )
    startup_max_delay = models.FloatField(
        default=DEFAULT_STARTUP_MAX_DELAY, validators=[MinValueValidator(0)], help_text="seconds"
    )
    probe_netns = models.CharField(
        max_length=64,
        blank=True,
        validators=[Rule("netns")],
        help_text="Network namespace probes run in, as `ip netns add` named it (it lives in "
        "/run/netns); empty: the host's.",
    )
    transition_history = models.PositiveIntegerField(
        default=DEFAULT_TRANSITION_HISTORY, validators=[Rule("transition_history")]
    )
    config_file = models.CharField(
        max_length=255,
        blank=True,
        help_text="When set, this file owns the config and admin edits of config are refused.",
    )
    config_imported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("reload_config", "Can reload a deployment's config from its file"),
            ("take_over_config", "Can hand a deployment's config from its file to admin"),
            ("export_config", "Can export a deployment's config as maglev.yaml"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(startup_min_delay__lte=models.F("startup_max_delay")),
                name="deployment_startup_delays_ordered",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Healthcheck(models.Model):
    """How to probe: type, port, timing and success criteria; shared by many backends."""

    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="healthchecks"
    )
    name = models.CharField(max_length=64, help_text=NAME_HELP, validators=[NAME])
    type = models.CharField(max_length=8, choices=[(t.value, t.value) for t in CheckType])
    port = models.PositiveIntegerField(null=True, blank=True, validators=[Rule("port")])
    interval = models.FloatField(default=DEFAULT_INTERVAL, validators=[MinValueValidator(0.001)])
    fast_interval = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.001)], help_text="empty: interval"
    )
    down_interval = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.001)], help_text="empty: interval"
    )
    timeout = models.FloatField(default=DEFAULT_TIMEOUT, validators=[MinValueValidator(0.001)])
    rise = models.PositiveIntegerField(default=DEFAULT_RISE, validators=[Rule("rise_fall")])
    fall = models.PositiveIntegerField(default=DEFAULT_FALL, validators=[Rule("rise_fall")])
    source_ipv4 = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    source_ipv6 = models.GenericIPAddressField(protocol="IPv6", null=True, blank=True)
    slow_start = models.FloatField(default=0, validators=[MinValueValidator(0)])
    method = models.CharField(max_length=8, default="GET", validators=[Rule("http_method")])
    path = models.CharField(max_length=1024, default="/", validators=[Rule("http_path")])
    host = models.CharField(max_length=255, blank=True, validators=[Rule("header_value")])
    expect_status = models.CharField(
        max_length=255,
        default="200-399",
        validators=[Rule("status_list")],
        help_text="Comma-separated statuses or ranges.",
    )
    expect_body = models.CharField(
        max_length=1024, blank=True, validators=[Rule("regex")], help_text="Regular expression."
    )
    sni = models.CharField(max_length=255, blank=True, validators=[Rule("header_value")])
    verify = models.BooleanField(default=True)
    send = models.CharField(max_length=1024, blank=True)
    expect = models.CharField(max_length=1024, blank=True)

    class Meta:
        ordering = ["deployment", "name"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "name"], name="healthcheck_unique_name"),
            models.CheckConstraint(
                condition=Q(rise__gte=1, fall__gte=1), name="healthcheck_rise_fall"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Backend(models.Model):
    """A named IP address, probed once per deployment with one healthcheck."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="backends")
    name = models.CharField(max_length=64, help_text=NAME_HELP, validators=[NAME])
    address = models.GenericIPAddressField()
    healthcheck = models.ForeignKey(Healthcheck, on_delete=models.PROTECT, related_name="backends")

    class Meta:
        ordering = ["deployment", "name"]
        permissions = [("operate_backend", "Can pause, resume, enable and disable backends")]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "name"], name="backend_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Frontend(models.Model):
    """One VIP: prefix, protocol, port (0 = all) and an ordered list of pools."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="frontends")
    name = models.CharField(max_length=64, help_text=NAME_HELP, validators=[NAME])
    description = models.CharField(max_length=255, blank=True)
    address = models.GenericIPAddressField()
    prefix_length = models.PositiveSmallIntegerField(
        blank=True, validators=[MaxValueValidator(128)], help_text="empty: a host (/32, /128)"
    )
    protocol = models.CharField(
        max_length=4, choices=[(p.value, p.value) for p in Protocol], default=Protocol.ANY.value
    )
    port = models.PositiveIntegerField(default=0, validators=[Rule("frontend_port")])
    src_ip_sticky = models.BooleanField(default=False)
    flush_on_down = models.BooleanField(default=True)

    class Meta:
        ordering = ["deployment", "name"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "name"], name="frontend_unique_name"),
            models.UniqueConstraint(
                fields=["deployment", "address", "prefix_length", "protocol", "port"],
                name="frontend_unique_vip",
            ),
            models.CheckConstraint(condition=Q(port__lte=65535), name="frontend_port_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        if self.prefix_length is None:
            self.prefix_length = 128 if ":" in str(self.address) else 32
        super().save(*args, **kwargs)


class Pool(models.Model):
    """A frontend's pool; the first pool with a usable backend carries the traffic."""

    frontend = models.ForeignKey(Frontend, on_delete=models.CASCADE, related_name="pools")
    name = models.CharField(max_length=64, help_text=NAME_HELP, validators=[NAME])
    position = models.PositiveIntegerField(default=0, help_text="Order among the frontend's pools.")

    class Meta:
        ordering = ["frontend", "position"]
        constraints = [
            models.UniqueConstraint(fields=["frontend", "name"], name="pool_unique_name"),
            models.UniqueConstraint(fields=["frontend", "position"], name="pool_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.frontend.name}/{self.name}"


class PoolMember(models.Model):
    """A backend in a pool with its configured weight, and an operator's override if any."""

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="members")
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, related_name="memberships")
    position = models.PositiveIntegerField(default=0)
    weight = models.PositiveSmallIntegerField(default=DEFAULT_WEIGHT, validators=[Rule("weight")])
    # Runtime intent (SetFrontendPoolBackendWeight): survives restarts and imports.
    weight_override = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[Rule("weight")]
    )

    class Meta:
        ordering = ["pool", "position", "id"]
        permissions = [("set_weight", "Can override a pool member's weight")]
        constraints = [
            models.UniqueConstraint(fields=["pool", "backend"], name="poolmember_unique_backend"),
            models.CheckConstraint(condition=Q(weight__lte=100), name="poolmember_weight_range"),
            models.CheckConstraint(
                condition=Q(weight_override__isnull=True) | Q(weight_override__lte=100),
                name="poolmember_override_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pool}/{self.backend.name}"

    @property
    def current_weight(self) -> int:
        return self.weight if self.weight_override is None else self.weight_override


class BackendState(models.Model):
    """A backend's runtime state and operator intent, persisted so restarts keep it."""

    backend = models.OneToOneField(Backend, on_delete=models.CASCADE, related_name="state")
    state = models.CharField(
        max_length=10, choices=[(s.value, s.value) for s in State], default=State.UNKNOWN.value
    )
    counter = models.PositiveIntegerField(default=0)
    since = models.DateTimeField(null=True, blank=True, help_text="time of the last transition")
    last_probe_at = models.DateTimeField(null=True, blank=True)
    last_ok = models.BooleanField(null=True)
    last_code = models.CharField(max_length=32, blank=True)
    last_detail = models.CharField(max_length=255, blank=True)
    last_latency = models.FloatField(null=True, blank=True, help_text="seconds")
    # The probing process rewrites only changed rows; this says when it last vouched for the
    # whole row, so a worker taking the shard over knows whether the health is still true.
    confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text="when the probing process last confirmed this state"
    )

    def __str__(self) -> str:
        return f"{self.backend.name}: {self.state}"

    # Operator intent is the state itself; these read it (no columns that could disagree).
    @property
    def paused(self) -> bool:
        return self.state == State.PAUSED.value

    @property
    def disabled(self) -> bool:
        return self.state == State.DISABLED.value


class Transition(models.Model):
    """One backend state change: from, to, when and why (a probe code or an operator action)."""

    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=10)
    to_state = models.CharField(max_length=10)
    at = models.DateTimeField(db_index=True)
    reason = models.CharField(max_length=255)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["backend", "-at"], name="transition_backend_at")]

    def __str__(self) -> str:
        return f"{self.backend.name}: {self.from_state} → {self.to_state} ({self.reason})"


class Door(models.TextChoices):
    """Which way an operator action came in."""

    ADMIN = "admin"
    GRPC = "grpc"
    CLI = "cli"
    COMMAND = "command"
    TASK = "task"
    SIGNAL = "signal"


class AuditEntry(models.Model):
    """One operator action: who, what, on what, when, through which door, and how it ended."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    deployment = models.ForeignKey(
        Deployment, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit"
    )
    actor = models.CharField(max_length=150)
    door = models.CharField(max_length=10, choices=Door.choices)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=255, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ok = models.BooleanField(default=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"
