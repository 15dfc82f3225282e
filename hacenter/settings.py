"""Settings, all read from the environment (and a local `.env`) through django-environ.

Safe defaults for one machine; production must set HACENTER_SECRET_KEY and HACENTER_FIELD_KEYS
(see README, "Running in production"), and the console refuses to start without them.
"""

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` (written by `make run`) fills in what the environment does not set; it never
# overrides it. HACENTER_ENV_FILE names another file, or none when empty: the test settings set
# it empty, so a developer's `.env` (HACENTER_DEBUG=true…) cannot change what the tests check.
ENV_FILE = env.str("HACENTER_ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("HACENTER_DEBUG", default=False)

SECRET_KEY = env.str("HACENTER_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "HACENTER_SECRET_KEY is not set. Set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set HACENTER_DEBUG=true on a development machine."
        )
    SECRET_KEY = "insecure-development-only-key"  # noqa: S105 - DEBUG only, never production

# Comma-separated Fernet keys, newest first, read by clusters.inventory.crypto at each use.
# Production must set them: a console that cannot read its credentials is broken, so say so at
# start, not at the first job. Debug mode may run without (clusters.inventory.crypto then raises a
# clear error on first use).
FIELD_KEYS = env.list("HACENTER_FIELD_KEYS", default=[])
if not DEBUG and not [k for k in FIELD_KEYS if k.strip()]:
    raise ImproperlyConfigured(
        "HACENTER_FIELD_KEYS is not set. Set it to one or more Fernet keys, newest first "
        "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        "), or set HACENTER_DEBUG=true on a development machine."
    )
if not DEBUG:
    from cryptography.fernet import Fernet

    for _position, _key in enumerate([k.strip() for k in FIELD_KEYS if k.strip()], start=1):
        try:
            Fernet(_key.encode())
        except ValueError:
            # The position, never the key: this message lands in service logs.
            raise ImproperlyConfigured(
                f"HACENTER_FIELD_KEYS: key number {_position} is not a Fernet key (32 url-safe "
                "base64-encoded bytes, as Fernet.generate_key() makes)."
            ) from None

ALLOWED_HOSTS = env.list("HACENTER_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("HACENTER_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",  # django-ninja: its Swagger page's static files (no CDN) and templates
    "clusters",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hacenter.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication (it records the user), before anything that may refuse a request.
    "clusters.access.audit.AuditMiddleware",
    "hacenter.security.RequestSizeLimitMiddleware",
    # Deny by default: a view that checks no role needs viewer to read, admin to write.
    "clusters.access.role_gate.RoleGateMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "hacenter.urls"
WSGI_APPLICATION = "hacenter.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "clusters.access.roles.role_flags",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: the Celery worker processes of the tests must see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
    # Several worker threads write log lines; wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "cluster-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = (
    True  # serve from the app folders when collectstatic has not run (make run)
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "HACENTER_STATICFILES_STORAGE",
            default="django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}

# --- Hardening -------------------------------------------------------------------------------
if not DEBUG:
    # Behind the TLS proxy the README asks for; HACENTER_SECURE_COOKIES=false only for tests
    # and plain-HTTP trials.
    SESSION_COOKIE_SECURE = env.bool("HACENTER_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Sent on HTTPS answers only (SecurityMiddleware); a year, as browsers' preload lists ask.
    SECURE_HSTS_SECONDS = env.int("HACENTER_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HACENTER_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_SSL_REDIRECT = env.bool("HACENTER_SSL_REDIRECT", default=False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("HACENTER_SESSION_AGE_S", default=8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# No script reads the CSRF cookie: pages carry the token in forms and in hx-headers on <body>.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Scripts and styles from our own origin only: no inline script, no inline style element,
# no eval (htmx is told so in base.html). Nothing is framed, nothing posts elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Request bodies: the largest honest one is a credential with a 16 KB key. Larger ones are
# refused before anything reads them, with a sentence saying so.
HACENTER_MAX_REQUEST_BYTES = env.int("HACENTER_MAX_REQUEST_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = HACENTER_MAX_REQUEST_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = HACENTER_MAX_REQUEST_BYTES
# Failed logins per user name and per source address within the window; then HTTP 429.
LOGIN_MAX_FAILURES_PER_USER = env.int("HACENTER_LOGIN_MAX_FAILURES_PER_USER", default=5)
LOGIN_MAX_FAILURES_PER_ADDRESS = env.int("HACENTER_LOGIN_MAX_FAILURES_PER_ADDRESS", default=20)
LOGIN_FAILURE_WINDOW_S = env.int("HACENTER_LOGIN_FAILURE_WINDOW_S", default=15 * 60)
# An address over its limit is slowed down, not refused (a shared proxy or NAT address must not
# lock everyone out): each of its logins waits this long before the password is checked.
LOGIN_SLOWDOWN_S = env.float("HACENTER_LOGIN_SLOWDOWN_S", default=2.0)
# The TLS proxies in front of gunicorn (addresses or CIDRs, e.g. 127.0.0.1 when it runs on this
# machine): only a request from one of them has its X-Forwarded-For read, for the audit trail
# and the login limits (clusters.access.client_address). Unset: REMOTE_ADDR, never the header.
HACENTER_TRUSTED_PROXIES = env.list("HACENTER_TRUSTED_PROXIES", default=[])
for _proxy in HACENTER_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"HACENTER_TRUSTED_PROXIES: {_proxy!r} is not an IP address or a network in CIDR "
            "form (e.g. 127.0.0.1 or 10.0.0.0/24)."
        ) from None

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="redis://127.0.0.1:6379/1")
CELERY_BROKER_TRANSPORT_OPTIONS = env.json("CELERY_BROKER_TRANSPORT_OPTIONS", default={})
CELERY_TASK_DEFAULT_QUEUE = env.str("HACENTER_QUEUE", default="hacenter")
CELERY_TASK_ACKS_LATE = False  # early ack: see LIBRARIES.md, the database is the source of truth
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 600
CELERY_BEAT_SCHEDULE = {
    "reap-lost-jobs": {"task": "jobs.tasks.reap_lost_jobs", "schedule": 10.0},
    "monitor-all": {
        "task": "clusters.tasks.monitor_all",
        "schedule": env.float("HACENTER_MONITOR_INTERVAL_S", default=2.0),
        # A fan-out still queued when the next is due is useless: drop it, never pile them up.
        "options": {"expires": env.float("HACENTER_MONITOR_INTERVAL_S", default=2.0)},
    },
    "compact-samples": {"task": "clusters.tasks.compact_samples", "schedule": 60.0},
    "resume-deliveries": {
        "task": "clusters.subscriptions.resume_deliveries",
        "schedule": 60.0,
    },
    # Each cluster's backup and restore drill schedule (jobs/backup_schedule.py); a due one
    # becomes a job.
    "start-due-backups": {"task": "clusters.tasks.start_due_backups", "schedule": 300.0},
    # How full each data directory's disk is (clusters/monitoring/disk_space.py).
    "check-disk-space": {
        "task": "clusters.tasks.check_disk_space",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # The fast-path agents' decisions (clusters/monitoring/fastpath_decisions.py).
    "read-fastpath-decisions": {
        "task": "clusters.tasks.read_fastpath_decisions",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
}
# Production gives the monitor a queue and workers of its own (deploy/hacenter-monitor.service):
# jobs hold worker threads for minutes over SSH, and a pool full of them must not leave the
# monitor's batches waiting, which is when statuses matter most. Unset: the default queue.
MONITOR_QUEUE = env.str("HACENTER_MONITOR_QUEUE", default="")
if MONITOR_QUEUE:
    CELERY_TASK_ROUTES = {
        "clusters.tasks.monitor_all": {"queue": MONITOR_QUEUE},
        "clusters.tasks.monitor_batch": {"queue": MONITOR_QUEUE},
    }

# --- Jobs -------------------------------------------------------------------------------------
# A running job whose worker has not beaten for this long is marked lost (reaper: every 10 s).
JOB_HEARTBEAT_INTERVAL_S = env.float("HACENTER_JOB_HEARTBEAT_INTERVAL_S", default=5.0)
JOB_LOST_AFTER_S = env.float("HACENTER_JOB_LOST_AFTER_S", default=30.0)
JOB_LOG_BATCH_LINES = 200
JOB_LOG_FLUSH_INTERVAL_S = 0.5
HACENTER_MAX_NODES = 9  # 2-8 database nodes and one proxy
SSH_CONNECT_TIMEOUT_S = env.float("HACENTER_SSH_CONNECT_TIMEOUT_S", default=10.0)
# A connection whose peer acknowledges nothing for this long is dropped (the step fails with
# "connection lost"): a network blip shorter than it is ridden out, a dead host is noticed.
SSH_DEAD_PEER_S = env.float("HACENTER_SSH_DEAD_PEER_S", default=60.0)
HOST_KEY_SCAN_TIMEOUT_S = 10.0

# --- Setup -----------------------------------------------------------------------------------
PATRONI_VERSION = env.str("HACENTER_PATRONI_VERSION", default="4.1.5")
HACENTER_WHEEL_CACHE = env.str("HACENTER_WHEEL_CACHE", default=str(BASE_DIR / "var" / "wheels"))
# Worker addresses the monitor reads nodes from, besides the one setup sees (several workers).
HACENTER_MONITOR_SOURCES = env.list("HACENTER_MONITOR_SOURCES", default=[])
# The console's workers as the servers see them (addresses or CIDRs), for the host firewall on
# every node, besides the address each setup's SSH session comes from (several workers, NAT).
HACENTER_CONSOLE_NETWORKS = env.list("HACENTER_CONSOLE_NETWORKS", default=[])
SETUP_PRIMARY_TIMEOUT_S = env.float("HACENTER_SETUP_PRIMARY_TIMEOUT_S", default=120.0)
SETUP_STANDBY_TIMEOUT_S = env.float("HACENTER_SETUP_STANDBY_TIMEOUT_S", default=300.0)

# --- Operations -----------------------------------------------------------------------------
SWITCHOVER_MAX_LAG_BYTES = env.int("HACENTER_SWITCHOVER_MAX_LAG_BYTES", default=1024 * 1024)
# Rebuild gives up a rejoin after this long without progress (no WAL replayed, no pg_rewind
# running), and after REBUILD_REJOIN_MAX_S in any case; then it makes a full copy.
REBUILD_REJOIN_TIMEOUT_S = env.float("HACENTER_REBUILD_REJOIN_TIMEOUT_S", default=60.0)
REBUILD_REJOIN_MAX_S = env.float("HACENTER_REBUILD_REJOIN_MAX_S", default=3600.0)
REBUILD_KEEP_OLD_DATA = env.int("HACENTER_REBUILD_KEEP_OLD_DATA", default=1)

# --- Monitoring -----------------------------------------------------------------------------
MONITOR_INTERVAL_S = env.float("HACENTER_MONITOR_INTERVAL_S", default=2.0)
MONITOR_TIMEOUT_S = env.float("HACENTER_MONITOR_TIMEOUT_S", default=1.0)  # per request
# Clusters per monitor task: Celery's cost is paid per task, the reads of a batch run at once.
MONITOR_BATCH_SIZE = env.int("HACENTER_MONITOR_BATCH_SIZE", default=25)
# How long a claimed cluster stays claimed (queued or being read) before a fan-out may claim it
# again: longer than a batch's wait in the queue plus its slowest cluster's reads (timeouts).
MONITOR_LEASE_S = env.float("HACENTER_MONITOR_LEASE_S", default=20.0)
# Reader threads per worker process, shared by its batches: reads only wait on sockets, and
# every unreachable node holds one for a full timeout.
MONITOR_READ_THREADS = env.int("HACENTER_MONITOR_READ_THREADS", default=64)
LAG_ALERT_BYTES = env.int("HACENTER_LAG_ALERT_BYTES", default=16 * 1024 * 1024)
LAG_ALERT_AFTER_S = env.float("HACENTER_LAG_ALERT_AFTER_S", default=30.0)
SAMPLES_RAW_KEEP_H = 24
SAMPLES_MINUTE_KEEP_D = 30

# --- Alerts -----------------------------------------------------------------------------------
ALERT_RATE_LIMIT = env.int("HACENTER_ALERT_RATE_LIMIT", default=5)  # per channel and window
ALERT_RATE_WINDOW_S = env.int("HACENTER_ALERT_RATE_WINDOW_S", default=300)
# Networks (CIDRs) a webhook may point into although they are not public: loopback, private,
# link-local... are refused by default so a channel cannot reach the console's own services or
# a cloud metadata endpoint (SSRF). Checked when a channel is saved and again at each send.
WEBHOOK_ALLOWED_NETWORKS = env.list("HACENTER_WEBHOOK_ALLOWED_NETWORKS", default=[])
DEFAULT_FROM_EMAIL = env.str("HACENTER_FROM_EMAIL", default="hacenter@localhost")
EMAIL_BACKEND = env.str(
    "HACENTER_EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env.str("HACENTER_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("HACENTER_EMAIL_PORT", default=25)
EMAIL_TIMEOUT = 10

# --- Preflight thresholds: the vendor minimums; falling short is a warning, not an error -------
PREFLIGHT_MIN_CPUS = env.int("HACENTER_PREFLIGHT_MIN_CPUS", default=2)
PREFLIGHT_MIN_RAM_MB = env.int("HACENTER_PREFLIGHT_MIN_RAM_MB", default=4096)
PREFLIGHT_MIN_DISK_GB = env.int("HACENTER_PREFLIGHT_MIN_DISK_GB", default=100)
PREFLIGHT_MAX_CLOCK_SKEW_S = env.float("HACENTER_PREFLIGHT_MAX_CLOCK_SKEW_S", default=1.0)
PREFLIGHT_PORT_TIMEOUT_S = 3

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("HACENTER_LOG_LEVEL", default="INFO")},
}
