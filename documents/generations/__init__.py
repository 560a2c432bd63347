"""Paid AI greetings and postcards: a charge exactly once per generation, a refund exactly once when it fails.
"""

from __future__ import annotations

from documents.common import merge_indexes
from documents.generations.store import (
    COLLECTION,
    COMPLETED,
    FAILED,
    IMAGES,
    PENDING,
    GenerationKeyMismatch,
    answered_refund,
    charge,
    complete_generation,
    discard_image,
    fail_generation,
    find_image,
    get_generation,
    list_generations,
    repair_generations,
    save_image,
    settle_refund,
    start_generation,
)
from documents.generations.store import INDEXES as _store_indexes

INDEXES = merge_indexes(_store_indexes)

__all__ = [
    "INDEXES",
    "COLLECTION",
    "COMPLETED",
    "FAILED",
    "GenerationKeyMismatch",
    "IMAGES",
    "PENDING",
    "answered_refund",
    "charge",
    "complete_generation",
    "discard_image",
    "fail_generation",
    "find_image",
    "get_generation",
    "list_generations",
    "repair_generations",
    "save_image",
    "settle_refund",
    "start_generation",
]
