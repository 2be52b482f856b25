"""Supabase Auth's admin API through supabase-py (`auth.admin`), with the project's secret key.

A user's role is `app_metadata.user_role` ('admin' | 'user'): only the service role can write
app_metadata, and the database copies it into public.profiles.role, the role every policy and the
access token hook read (migration 20261204300200).
"""

from __future__ import annotations

from typing import Literal

from supabase import ClientOptions, create_client
from supabase_auth import SyncGoTrueAdminAPI, User
from supabase_auth.types import AdminUserAttributes

from kamioi.settings import Settings

Role = Literal["admin", "user"]
ROLES: tuple[Role, ...] = ("admin", "user")
LIST_PAGE = 1000  # users per page when looking an email up (GoTrue's largest page)


class UserNotFound(Exception):
    pass


def auth_admin(settings: Settings) -> SyncGoTrueAdminAPI:
    # A server-side client: no session to persist or refresh, the secret key is the credential.
    options = ClientOptions(auto_refresh_token=False, persist_session=False)
    return create_client(settings.supabase_url, settings.supabase_secret_key, options).auth.admin


def create_user(admin: SyncGoTrueAdminAPI, *, email: str, password: str, role: Role) -> User:
    """A confirmed email user (they can sign in at once) with the given role."""
    attributes: AdminUserAttributes = {
        "email": email,
        "password": password,
        "email_confirm": True,
        "app_metadata": {"user_role": role},
    }
    return admin.create_user(attributes).user


def find_user_by_email(admin: SyncGoTrueAdminAPI, email: str) -> User:
    wanted, page = email.lower(), 1
    while True:
        users = admin.list_users(page=page, per_page=LIST_PAGE)
        for user in users:
            if (user.email or "").lower() == wanted:
                return user
        if len(users) < LIST_PAGE:
            raise UserNotFound(f"no user with the email {email}")
        page += 1


def set_role(admin: SyncGoTrueAdminAPI, user_id: str, role: Role) -> User:
    return admin.update_user_by_id(user_id, {"app_metadata": {"user_role": role}}).user
