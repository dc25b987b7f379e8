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
DEBUG = env_bool("DEBUG", not PRODUCTION)


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
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# One queue per kind of work, so de-identification, inference (GPU) and export scale apart.
CELERY_TASK_ROUTES = {"anonymizer.*": {"queue": "deid"}, "datasets.*": {"queue": "export"}}
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "workbench.api.pagination.Pagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "workbench.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
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
    "ENUM_NAME_OVERRIDES": {"IngestItemStatusEnum": "anonymizer.models.ItemStatus"},
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
