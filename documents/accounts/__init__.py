"""Accounts: users, sessions, sign-in identities, passwords, account tokens and the mail outbox.

Invariants: an e-mail (NFKC, lower-cased) belongs to one user (unique index); a refresh token is
used once, a reused one ends its whole session; passwords are only hashed in the CPU pool; a
deleted account keeps only what the ledger needs. A new user starts with an empty wallet
(`wallet.new_wallet`); accounts never move points.
"""

from __future__ import annotations

from documents.accounts.erasure import erase_personal_data
from documents.accounts.identities import INDEXES as _identities_indexes
from documents.accounts.identities import (
    can_sign_in_with_password,
    create_user_with_identity,
    find_user_by_identity,
    has_real_email,
    link_identity,
    public_email,
    set_first_password,
    unlink_identity,
)
from documents.accounts.mail import INDEXES as _mail_indexes
from documents.accounts.mail import claim, enqueue, mark_failed, mark_sent
from documents.accounts.passwords import MAX_CHARS, MIN_CHARS, PasswordHasher, password_problem
from documents.accounts.sessions import COLLECTION as SESSIONS
from documents.accounts.sessions import INDEXES as _sessions_indexes
from documents.accounts.sessions import (
    RefreshTokenReused,
    create_session,
    end_session_for_user,
    find_active_session,
    find_session_by_refresh_token,
    list_active_sessions,
    revoke_session,
    revoke_user_sessions,
    rotate_refresh_token,
)
from documents.accounts.state import (
    confirm_email,
    drop_pending_email,
    erase_user,
    request_email_change,
    set_email_verified,
    set_locale,
    start_account,
)
from documents.accounts.tokens import INDEXES as _tokens_indexes
from documents.accounts.tokens import InvalidOrExpiredToken, consume, issue
from documents.accounts.users import INDEXES as _users_indexes
from documents.accounts.users import (
    create_user,
    find_user,
    find_user_by_email,
    get_user,
    parse_id,
    remember_device,
    update_account,
)
from documents.common import merge_indexes

INDEXES = merge_indexes(_identities_indexes, _mail_indexes, _sessions_indexes, _tokens_indexes, _users_indexes)

__all__ = [
    "INDEXES",
    "InvalidOrExpiredToken",
    "MAX_CHARS",
    "MIN_CHARS",
    "PasswordHasher",
    "RefreshTokenReused",
    "SESSIONS",
    "can_sign_in_with_password",
    "claim",
    "confirm_email",
    "consume",
    "create_session",
    "create_user",
    "create_user_with_identity",
    "drop_pending_email",
    "end_session_for_user",
    "enqueue",
    "erase_personal_data",
    "erase_user",
    "find_active_session",
    "find_session_by_refresh_token",
    "find_user",
    "find_user_by_email",
    "find_user_by_identity",
    "get_user",
    "has_real_email",
    "issue",
    "link_identity",
    "list_active_sessions",
    "mark_failed",
    "mark_sent",
    "parse_id",
    "password_problem",
    "public_email",
    "remember_device",
    "request_email_change",
    "revoke_session",
    "revoke_user_sessions",
    "rotate_refresh_token",
    "set_email_verified",
    "set_first_password",
    "set_locale",
    "start_account",
    "unlink_identity",
    "update_account",
]
