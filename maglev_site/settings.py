"""Django settings for vpp-maglev.

Layered: the defaults below suit the embedded single-machine run (SQLite in the data directory,
in-memory channel layer, no Redis); each can be overridden by a MAGLEV_* environment variable or
DATABASE_URL, which is how the Debian package and production set them (/etc/default/vpp-maglev).
docs/config.md lists every variable.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import dj_database_url

from . import dbfiles, secretfiles
from .channel_layer import redis_channel_layer
from .env import env_bool, env_choice, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("MAGLEV_DATA_DIR", str(BASE_DIR / "var")))
# The data directory holds the database (password hashes, sessions) and generated secrets: 0700
# whatever the umask. A client program (maglevc) may run as a user who can't write there; it
# needs no data dir.
with contextlib.suppress(OSError):
    secretfiles.ensure_private_dir(DATA_DIR)
# The SQLite file is created 0600 before SQLite first opens it, and kept 0600 (with its -wal
# and -shm) on every connection; PostgreSQL is left alone. The default must match DATABASES.
dbfiles.prepare(os.environ.get("DATABASE_URL"), DATA_DIR / "maglev.sqlite3")
dbfiles.install()


def _secret_key() -> str:
    """MAGLEV_SECRET_KEY, the file MAGLEV_SECRET_KEY_FILE, the systemd credential secret-key
    (the package's /etc/vpp-maglev/secret-key), else a random key kept in DATA_DIR/secret_key,
    created once (0600, race-free: concurrent starters all read the same key). Never a fixed one.
    """
    try:
        key = secretfiles.load_secret(
            "secret-key", "MAGLEV_SECRET_KEY", DATA_DIR / "secret_key", create=True, nbytes=50
        )
    except (secretfiles.SecretError, OSError):
        # Not readable by this user (e.g. maglevc run by an operator): client programs sign
        # nothing, so a throwaway key is fine; the daemons run as the owner of the file.
        key = None
    return key or secrets.token_urlsafe(50)


SECRET_KEY = _secret_key()
DEBUG = env_bool("MAGLEV_DEBUG", False)
ALLOWED_HOSTS = env_list("MAGLEV_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("MAGLEV_CSRF_TRUSTED_ORIGINS", [])

# Web login and sessions (docs/admin.md). An admin session lasts MAGLEV_SESSION_HOURS, not
# Django's two weeks; its cookie is out of scripts' reach and not sent on cross-site requests.
# Failed logins are audited and throttled by health/loginguard.py: MAGLEV_LOGIN_MAX_FAILURES
# for one username from one address within MAGLEV_LOGIN_LOCKOUT_MINUTES lock it out that long.
MAGLEV_SESSION_HOURS = env_int("MAGLEV_SESSION_HOURS", 8)
MAGLEV_LOGIN_MAX_FAILURES = env_int("MAGLEV_LOGIN_MAX_FAILURES", 5)
MAGLEV_LOGIN_LOCKOUT_MINUTES = env_int("MAGLEV_LOGIN_LOCKOUT_MINUTES", 15)
for _name in ("MAGLEV_SESSION_HOURS", "MAGLEV_LOGIN_MAX_FAILURES", "MAGLEV_LOGIN_LOCKOUT_MINUTES"):
    if globals()[_name] < 1:
        raise ValueError(f"{_name}={globals()[_name]}: must be at least 1")
SESSION_COOKIE_AGE = MAGLEV_SESSION_HOURS * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# MAGLEV_HTTPS: the web side is reached over HTTPS only, with TLS at a reverse proxy that sets
# X-Forwarded-Proto (and strips a client's), or at Daphne itself. Cookies then travel only over
# HTTPS, browsers keep to HTTPS for a year (HSTS, no preload) and plain HTTP is redirected,
# except /metrics, which Prometheus may scrape over plain HTTP (it carries no cookie).
MAGLEV_HTTPS = env_bool("MAGLEV_HTTPS", False)
if MAGLEV_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = False
    SECURE_HSTS_PRELOAD = False
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^metrics$"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_prometheus",
    "health",
    "dataplane",
    "grpcapi",
    "frontend",
    "maglev_site",  # the composition root, last: it builds on the apps above
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "maglev_site.urls"
WSGI_APPLICATION = "maglev_site.wsgi.application"
ASGI_APPLICATION = "maglev_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite in the data directory unless DATABASE_URL names another database (PostgreSQL).
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'maglev.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Waiting on a lock beats failing when the web side and the runtime write at once. The
    # wait only works when a transaction takes the write lock at BEGIN (IMMEDIATE): one that
    # read first and then wants to write after another thread's commit fails at once with
    # "database is locked". WAL lets readers go on while the runtime's persister writes.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["timeout"] = 20
    options["transaction_mode"] = "IMMEDIATE"
    options["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(exist_ok=True)
# Whitenoise serves admin and dashboard assets straight from the apps: no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Redis carries the channel layer and Celery in production; empty means in-process (embedded).
# MAGLEV_REDIS_URL, MAGLEV_REDIS_URL_FILE or the credential redis-url (it may hold a password).
REDIS_URL = secretfiles.load_secret("redis-url", "MAGLEV_REDIS_URL", None) or ""
if REDIS_URL:
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Tasks run on threads of the worker's main process, where the probe runtime lives.
CELERY_WORKER_POOL = "threads"
# Each worker also consumes its own queue, so a change can be sent to every live worker.
CELERY_WORKER_DIRECT = True
CELERY_BEAT_SCHEDULE = {
    "maglev-housekeeping": {"task": "maglev.housekeeping", "schedule": 24 * 3600.0},
}
MAGLEV_WORKER_RUNTIME = env_bool("MAGLEV_WORKER_RUNTIME", True)
# Where a worker serves its runtime's /metrics (maglev_site/metrics_server.py): host:port, port 0
# for a free one (found through the web side's /metrics/targets); empty: not served.
MAGLEV_WORKER_METRICS = env_str("MAGLEV_WORKER_METRICS", "127.0.0.1:0")
# Days the audit log keeps (maglev.housekeeping); at least a week, whatever the variable says.
MAGLEV_AUDIT_DAYS = max(7, env_int("MAGLEV_AUDIT_DAYS", 365))
# maglev_probe_duration_seconds per backend and type (true), per type only (false), or auto:
# per backend up to 1,000 backends (health/engine/metrics.py, AUTO_PER_BACKEND).
MAGLEV_METRICS_BACKEND_HISTOGRAM = env_choice(
    "MAGLEV_METRICS_BACKEND_HISTOGRAM", {"auto": None, "true": True, "false": False}, "auto"
)

# The programs' own settings, one MAGLEV_* variable each (SPEC §7 names).
MAGLEV_CONFIG = env_str("MAGLEV_CONFIG", "/etc/vpp-maglev/maglev.yaml")
MAGLEV_DEPLOYMENT = env_str("MAGLEV_DEPLOYMENT", "default")
MAGLEV_GRPC_ADDR = env_str("MAGLEV_GRPC_ADDR", "127.0.0.1:9090")
# gRPC access (docs/security.md): changes always need a token (MAGLEV_GRPC_TOKEN, the file
# MAGLEV_GRPC_TOKEN_FILE, the systemd credential grpc-token, or DATA_DIR/grpc-token made on
# first start); MAGLEV_GRPC_AUTH=none opens them to every local user, on loopback only.
MAGLEV_GRPC_AUTH = env_str("MAGLEV_GRPC_AUTH", "token")
MAGLEV_GRPC_READ_AUTH = env_str("MAGLEV_GRPC_READ_AUTH", "open")
# /view/ above this many backend rows shows each pool's summary and its problem rows only
# (a frontend's own page, ?frontend=NAME, shows all of its rows).
MAGLEV_VIEW_ROW_LIMIT = max(1, env_int("MAGLEV_VIEW_ROW_LIMIT", 1000))
MAGLEV_GRPC_MAX_WATCHERS = env_int("MAGLEV_GRPC_MAX_WATCHERS", 64)
MAGLEV_GRPC_MAX_CALLS = env_int("MAGLEV_GRPC_MAX_CALLS", 256)
MAGLEV_GRPC_CHECK_DIRS = env_list("MAGLEV_GRPC_CHECK_DIRS", [])
MAGLEV_LISTEN = env_str("MAGLEV_LISTEN", "127.0.0.1:8080")
# Other daemons the dashboard shows beside this one, read over their gRPC API (reads are open
# by default; MAGLEV_SERVERS_TOKEN when they ask a token for reads, MAGLEV_GRPC_TLS_CA for TLS).
MAGLEV_SERVERS = env_list("MAGLEV_SERVERS", [])
MAGLEV_SERVERS_TOKEN = env_str("MAGLEV_SERVERS_TOKEN", "")
MAGLEV_GRPC_TLS_CA = env_str("MAGLEV_GRPC_TLS_CA", "")
# True in the dashboard-only process (`manage.py dashboard`, maglev_site/compose.py): /view/
# shows the MAGLEV_SERVERS daemons alone. Set by that command, not by the environment.
MAGLEV_DASHBOARD_ONLY = False
MAGLEV_VPP_API_ADDR = env_str("MAGLEV_VPP_API_ADDR", "/run/vpp/api.sock")
MAGLEV_VPP_STATS_ADDR = env_str("MAGLEV_VPP_STATS_ADDR", "/run/vpp/stats.sock")
MAGLEV_SERVER = env_str("MAGLEV_SERVER", "127.0.0.1:9090")
MAGLEV_TASK_TIMEOUT = env_int("MAGLEV_TASK_TIMEOUT", 10)

LOG_LEVEL = env_str("MAGLEV_LOG_LEVEL", "info").upper()
LOG_FORMAT = env_str("MAGLEV_LOG_FORMAT", "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "maglev_site.logfmt.TextFormatter"},
        "json": {"()": "maglev_site.logfmt.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "maglev": {"level": LOG_LEVEL, "propagate": True},
        "django": {"level": "WARNING", "propagate": True},
    },
}
