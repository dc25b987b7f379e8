"""Finding 4 of issue 10: the demo's users are not Django staff, and the admin never shows an API token."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from workbench.management.commands.seed_demo import DEMO_USERS, demo_users_create
from workbench.models import Membership, Project, Role


@pytest.mark.django_db
def test_demo_users_are_ordinary_users_with_roles_even_after_an_older_seed() -> None:
    project = Project.objects.create(name="Demo", slug="demo")
    # what an earlier seed_demo made: a superuser admin
    get_user_model().objects.create_user(username="admin", is_staff=True, is_superuser=True)
    made = demo_users_create(project=project)
    assert [row[0] for row in made] == list(DEMO_USERS)
    users = get_user_model().objects.filter(username__in=DEMO_USERS)
    assert users.count() == len(DEMO_USERS)
    assert not users.filter(is_staff=True).exists() and not users.filter(is_superuser=True).exists()
    admin = users.get(username="admin")
    assert Membership.objects.filter(user=admin, project=project, role=Role.ADMIN).exists()
    client = Client()
    client.force_login(admin)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_a_superuser_never_sees_an_api_token_in_the_admin(cast: dict[str, Any]) -> None:
    key = Token.objects.create(user=cast["carol"]).key  # a compliance officer's: it opens the vault
    root = get_user_model().objects.create_superuser(username="root", password="x")
    client = Client()
    client.force_login(root)
    pages = ["/admin/", "/admin/auth/user/", f"/admin/auth/user/{cast['carol'].pk}/change/"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert key not in response.content.decode(), url
        assert key[:8] not in response.content.decode(), url
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404
    assert client.get(f"/admin/authtoken/tokenproxy/{cast['carol'].pk}/change/").status_code == 404
