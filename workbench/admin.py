"""Django admin for a superuser made with ``manage.py createsuperuser`` (never a demo user):
projects and memberships. The audit log is read-only here; API tokens are not here at all."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from rest_framework.authtoken.models import TokenProxy

from workbench.models import AuditEvent, Membership, Project

# DRF registers a token admin that lists every key in the clear, and str(token) is the key, so
# even a change page's title and the admin's own log would carry it. A key is its owner's access
# (a compliance officer's opens the identity vault), so the admin does not show tokens at all.
# Revoke one with `manage.py drf_create_token -r <username>`, or by deactivating the user.
# (rest_framework.authtoken comes before workbench in INSTALLED_APPS, so it is registered by now.)
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    exclude = ["secret_encrypted", "deid_options"]  # options are set on the project's Settings page
    inlines = [MembershipInline]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["seq", "at", "action", "actor_name", "project_slug", "object_type", "object_id"]
    list_filter = ["action"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
