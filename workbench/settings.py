"""Workbench settings.

With no environment at all, Workbench runs embedded on one machine: SQLite, local
file storage and a filesystem Celery broker under ``var/``. Every production
concern (PostgreSQL, Redis, S3, secrets, hosts) comes from the environment; see
the README's configuration table.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

from workbench.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("WORKBENCH_VAR_DIR", str(BASE_DIR / "var")))

PRODUCTION = env_bool("WORKBENCH_PRODUCTION", False)
# Off unless asked for (DEBUG=1): the debug pages list every URL pattern and settings.
DEBUG = env_bool("DEBUG", False)


def _embedded_secret(name: str) -> str:
    """A secret kept in var/ so that an embedded install survives restarts."""
    path = VAR_DIR / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY") if PRODUCTION else env_str("SECRET_KEY", "") or _embedded_secret("secret.key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "workbench",
    "anonymizer",
    "annotations",
    "datasets",
    "inference",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "workbench.urls"
WSGI_APPLICATION = "workbench.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'workbench.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Storage: "default" holds de-identified data only; "quarantine" holds raw input,
# always encrypted before it is written (anonymizer.quarantine).
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
MEDIA_ROOT = VAR_DIR / "store"
QUARANTINE_ROOT = VAR_DIR / "quarantine"
STORAGE_BACKEND = env_str("WORKBENCH_STORAGE", "local")
if STORAGE_BACKEND == "s3":
    _s3 = {
        "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
        "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
        "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": True,
    }
    STORAGES = {
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**_s3, "location": "store"}},
        "quarantine": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**_s3, "location": "quarantine"}},
    }
elif STORAGE_BACKEND == "local":
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}},
        "quarantine": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": QUARANTINE_ROOT},
        },
    }
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("WORKBENCH_STORAGE must be 'local' or 's3'.")
STORAGES["staticfiles"] = {
    "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
    if PRODUCTION
    else "django.contrib.staticfiles.storage.StaticFilesStorage"
}

# The key that encrypts the quarantine and the identity vault (Fernet, urlsafe base64).
VAULT_KEY = env_str("WORKBENCH_VAULT_KEY") if PRODUCTION else env_str("WORKBENCH_VAULT_KEY", "") or None
VAULT_KEY_FILE = VAR_DIR / "vault.key"
# --- Audit chain (issue 10, finding 6; see workbench/audit_keys.py and the README) ---
# HMAC key signing new audit events and checkpoints; older keys still verify (comma-separated).
AUDIT_KEY = env_str("WORKBENCH_AUDIT_KEY") if PRODUCTION else env_str("WORKBENCH_AUDIT_KEY", "") or None
AUDIT_KEY_FILE = VAR_DIR / "audit.key"
AUDIT_KEYS_OLD = env_list("WORKBENCH_AUDIT_KEYS_OLD")
# Signed checkpoints of the chain's head: append-only, somewhere the database cannot rewrite.
AUDIT_CHECKPOINT_PATH = Path(
    env_str("WORKBENCH_AUDIT_CHECKPOINTS", "") or VAR_DIR / "audit-checkpoints" / "checkpoints.jsonl"
)
# --- end audit chain ---
# Raw files are deleted this many days after their successful de-identification.
QUARANTINE_RETENTION_DAYS = env_int("WORKBENCH_QUARANTINE_RETENTION_DAYS", 0)
MAX_UPLOAD_BYTES = env_int("WORKBENCH_MAX_FILE_BYTES", 512 * 1024 * 1024)
MAX_ZIP_MEMBERS = env_int("WORKBENCH_MAX_ZIP_MEMBERS", 100_000)
MAX_ZIP_RATIO = env_int("WORKBENCH_MAX_ZIP_RATIO", 200)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 10_000

# --- uploads of any size (helper "upload", issue 10) ----------------------------------------------
# Uploads are sealed into the quarantine as they arrive (anonymizer.upload_handler, anonymizer.tus):
# never spooled in the clear. Archives are expanded in the worker under these budgets.
MAX_ARCHIVE_EXPANDED_BYTES = env_int("WORKBENCH_MAX_ARCHIVE_BYTES", 16 * 1024 * 1024 * 1024)
MAX_UPLOAD_LENGTH = env_int("WORKBENCH_MAX_UPLOAD_BYTES", 64 * 1024 * 1024 * 1024)
# Active learning: how long a served "next best case" is held for its reader (inference.active_learning).
WORKBENCH_CASE_RESERVATION_MINUTES = env_int("WORKBENCH_CASE_RESERVATION_MINUTES", 30)
UPLOAD_SEGMENT_BYTES = env_int("WORKBENCH_UPLOAD_SEGMENT_BYTES", 4 * 1024 * 1024)
# A resumable upload untouched this long is deleted by purge_quarantine (and the beat sweep).
UPLOAD_EXPIRY_HOURS = env_int("WORKBENCH_UPLOAD_EXPIRY_HOURS", 24)
# Views that take no files drop file parts unread; the batch upload view installs the sealing one.
FILE_UPLOAD_HANDLERS = ["anonymizer.upload_handler.DiscardFileUploadHandler"]
# --- end of uploads of any size ------------------------------------------------------------------

# Celery: a filesystem broker needs no server in the embedded default.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # kombu's virtual transports look for new messages once a second by default: up to a
        # second before a worker starts a task, as long as the network's pass over a whole series
        # on a GPU. A folder listing ten times a second costs nothing noticeable.
        "polling_interval": 0.1,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# One queue per kind of work, so de-identification, inference (GPU) and export scale apart.
CELERY_TASK_ROUTES = {
    "anonymizer.*": {"queue": "deid"},
    "datasets.*": {"queue": "export"},
    "inference.training_*": {"queue": "training"},
    "inference.*": {"queue": "inference"},
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- exactly-once ingest (helper "ingest": finding 5 of issue 10) ---
# A worker's claim on an item lives while its heartbeat (every quarter lease) does; the sweep on
# Celery beat sends again items whose claim went stale and items whose task was never handed
# to the broker (committed by a process that died) after the grace period.
INGEST_CLAIM_LEASE_SECONDS = env_int("WORKBENCH_CLAIM_LEASE_SECONDS", 60)
INGEST_ENQUEUE_GRACE_SECONDS = env_int("WORKBENCH_ENQUEUE_GRACE_SECONDS", 60)
INGEST_SWEEP_SECONDS = env_int("WORKBENCH_SWEEP_SECONDS", 60)
# A RECEIVED item handed over this long ago, with nothing waiting in its queue, lost its message.
INGEST_LOST_MESSAGE_SECONDS = env_int("WORKBENCH_LOST_MESSAGE_SECONDS", 600)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis hands a message its worker never acknowledged (killed) out again after the
    # visibility timeout, looked for every 10 s; the claim's heartbeat keeps a longer task safe.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300),
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
CELERY_TASK_ROUTES = {
    "anonymizer.items_sweep": {"queue": "default"},
    "datasets.exports_sweep": {"queue": "default"},
    "anonymizer.uploads_sweep": {"queue": "default"},
    **CELERY_TASK_ROUTES,
}
CELERY_BEAT_SCHEDULE = {
    "items-sweep": {
        "task": "anonymizer.items_sweep",
        "schedule": float(INGEST_SWEEP_SECONDS),
        "options": {"expires": float(INGEST_SWEEP_SECONDS)},  # a late sweep is dropped: the next one comes
    },
    # Uploads no worker expanded are sent again; expired resumable uploads and orphan segments go.
    "uploads-sweep": {
        "task": "anonymizer.uploads_sweep",
        "schedule": float(INGEST_SWEEP_SECONDS),
        "options": {"expires": float(INGEST_SWEEP_SECONDS)},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# --- end of "exactly-once ingest" ---

# --- export leases (helper "exportbeat": finding 5 of issue 10) ---
# An export build's claim lives while its heartbeat (every quarter lease) does, however long the
# build runs; the sweep sends again, within about a lease and a sweep, exports whose claim lapsed.
EXPORT_CLAIM_LEASE_SECONDS = env_int("WORKBENCH_EXPORT_LEASE_SECONDS", 60)
EXPORT_SWEEP_SECONDS = env_int("WORKBENCH_EXPORT_SWEEP_SECONDS", 60)
CELERY_BEAT_SCHEDULE["exports-sweep"] = {
    "task": "datasets.exports_sweep",
    "schedule": float(EXPORT_SWEEP_SECONDS),
    "options": {"expires": float(EXPORT_SWEEP_SECONDS)},
}
# --- end of "export leases" ---

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "workbench.api.pagination.Pagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "workbench.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "workbench.api.schema.AutoSchema",
    # ?format= selects report formats in our own views, not DRF renderers.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Workbench API",
    "DESCRIPTION": "De-identify, annotate and curate DICOM for machine learning.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for the ingest item status wherever an item appears (batches, the quarantine).
    "ENUM_NAME_OVERRIDES": {
        "IngestItemStatusEnum": "anonymizer.models.ItemStatus",
        "ModelKindEnum": "inference.models.ModelKind",
        "KindEnum": "annotations.models.LabelKind",  # kept its name when model kinds came
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # pydicom warns with element values on malformed input; keep them out of logs.
    # pynetdicom's debug output lists SOP Instance UIDs.
    "loggers": {"pydicom": {"level": "ERROR"}, "pynetdicom": {"level": "WARNING"}},
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# --- errors (issue 10): bad input never answers 500 -------------------------------
# After authentication, so that the HTML error page shows who is logged in.
MIDDLEWARE += ["workbench.middleware.RejectControlCharacters"]
# Swagger UI and ReDoc from the app's own static files, not a CDN (air-gapped hospitals).
INSTALLED_APPS += ["drf_spectacular_sidecar"]
SPECTACULAR_SETTINGS.update(
    {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR"}
)
# Every operation's 4xx/5xx answers, in the JSON error shape, are part of the schema.
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "workbench.api.schema.add_error_responses",
]
# JSON bodies only, except where a view says otherwise (uploads): a form-encoded or multipart
# body the schema does not declare must not be half-parsed into an empty request and accepted.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["workbench.api.parsers.JSONParser"]
REST_FRAMEWORK["TEST_REQUEST_DEFAULT_FORMAT"] = "json"

# --- Hardening (issue 10, "shield"): shared cache, throttles, log-in lockout, CSP, listener ---
# The lockout counters live in the default cache; it must be shared by every web process
# (gunicorn runs several), so it is the database cache unless Redis is configured. Its
# table is made by the migration workbench 0005 (createcachetable).
_cache_url = env_str("WORKBENCH_CACHE_URL", "")
_redis_cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
_use_redis = _cache_url.startswith(("redis://", "rediss://"))
CACHES = {
    "default": _redis_cache
    if _use_redis
    else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "workbench_cache"},
    # Throttles touch their cache on every request: Redis, or each process's memory
    # (a ceiling approximate by the number of processes), never the database.
    "throttle": _redis_cache
    if _use_redis
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"},
}
# Wrong passwords per account, failed attempts (passwords and tokens) per client address,
# before every attempt is refused for LOCKOUT_SECONDS. Behind a proxy, name the header that
# carries the client's address (e.g. HTTP_X_FORWARDED_FOR), or every client shares one.
LOCKOUT_ACCOUNT_FAILURES = env_int("WORKBENCH_LOCKOUT_ACCOUNT_FAILURES", 5)
LOCKOUT_IP_FAILURES = env_int("WORKBENCH_LOCKOUT_IP_FAILURES", 20)
LOCKOUT_SECONDS = env_int("WORKBENCH_LOCKOUT_SECONDS", 900)
LOCKOUT_CLIENT_IP_HEADER = env_str("WORKBENCH_CLIENT_IP_HEADER", "")
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "workbench.api.auth.LockoutTokenAuthentication",
    "rest_framework.authentication.SessionAuthentication",
]
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "workbench.api.throttles.AnonRateThrottle",
    "workbench.api.throttles.UserRateThrottle",
    "workbench.api.throttles.ScopedRateThrottle",
]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "anon": env_str("WORKBENCH_THROTTLE_ANON", "120/min"),
    # A viewer loads one request per slice: generous per user, a ceiling for a runaway script.
    "user": env_str("WORKBENCH_THROTTLE_USER", "6000/min"),
    # Identity look-ups: a stolen compliance token cannot empty the vault in one go.
    "vault": env_str("WORKBENCH_THROTTLE_VAULT", "60/hour"),
}
# The DICOM listener (anonymizer.listener), in seconds: ACSE (also how long a new connection
# may wait before its association request), DIMSE, and how long an association may stay
# silent. Connections still waiting for their request do not count toward the association
# limit; the connection cap bounds the threads they hold.
DICOM_LISTENER_ACSE_TIMEOUT = env_int("WORKBENCH_LISTENER_ACSE_TIMEOUT", 30)
DICOM_LISTENER_DIMSE_TIMEOUT = env_int("WORKBENCH_LISTENER_DIMSE_TIMEOUT", 30)
DICOM_LISTENER_NETWORK_TIMEOUT = env_int("WORKBENCH_LISTENER_NETWORK_TIMEOUT", 30)
DICOM_LISTENER_MAX_ASSOCIATIONS = env_int("WORKBENCH_LISTENER_MAX_ASSOCIATIONS", 20)
DICOM_LISTENER_MAX_CONNECTIONS = env_int("WORKBENCH_LISTENER_MAX_CONNECTIONS", 200)
# Content-Security-Policy (django-csp): scripts only from this origin, none inline.
# The viewer needs 'wasm-unsafe-eval' (Cornerstone's WebAssembly codecs compile at run time,
# which is not eval of script text) and workers from this origin or blob: URLs.
INSTALLED_APPS.append("csp")
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'wasm-unsafe-eval'"],
        "worker-src": ["'self'", "blob:"],
        "style-src": ["'self'"],
        # Cornerstone's annotation tools write style attributes on their SVG; attributes
        # cannot run script, so allow them (and only them: no inline <style> elements).
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
