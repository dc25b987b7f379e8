"""Django admin for staff: projects and memberships. The audit log is read-only here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from workbench.models import AuditEvent, Membership, Project


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
