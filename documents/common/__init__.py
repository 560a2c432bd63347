"""Shared pieces with no aggregate of their own: domain errors, text rules, time, backoff, upsert, leases, indexes.

Nothing here imports another documents package.
"""

from __future__ import annotations

from documents.common.backoff import backoff
from documents.common.clock import bson_now, utc
from documents.common.errors import Conflict, DomainError, EmailTaken, Invalid, InvalidCredentials, NotFound, Unauthorized
from documents.common.indexes import merge_indexes
from documents.common.leases import INDEXES as _leases_indexes
from documents.common.leases import acquire_lease, release_lease
from documents.common.text import (
    BMP,
    DOLLARS,
    EMAIL_REFUSED,
    LEADING_IGNORED,
    char_class,
    email_problem,
    normalize_email,
    normalize_text,
    text_problem,
)
from documents.common.upsert import upsert_unique

INDEXES = merge_indexes(_leases_indexes)

__all__ = [
    "merge_indexes",
    "INDEXES",
    "BMP",
    "Conflict",
    "DOLLARS",
    "DomainError",
    "EMAIL_REFUSED",
    "EmailTaken",
    "Invalid",
    "InvalidCredentials",
    "LEADING_IGNORED",
    "NotFound",
    "Unauthorized",
    "acquire_lease",
    "backoff",
    "bson_now",
    "char_class",
    "email_problem",
    "normalize_email",
    "normalize_text",
    "release_lease",
    "text_problem",
    "upsert_unique",
    "utc",
]
