"""Create the database cache's table (lockout counters, throttles), so that ``migrate`` alone
sets up a deployment. Does nothing when the cache is Redis; idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps: Any, schema_editor: Any) -> None:
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("workbench", "0004_audit_adopt_legacy_chain")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
