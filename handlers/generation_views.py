"""The public shapes of a generation: the JSON views the handlers answer with and their documented schemas."""

from __future__ import annotations

from marshmallow import fields

from documents import generations
from generation import KINDS, LANGUAGES
from handlers.image_links import ImageLinks
from handlers.schemas import CamelSchema, iso


class GenerationResultSchema(CamelSchema):
    """A completed generation as POST /api/generation/request answers it (identical on every replay)."""

    generation_id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": list(KINDS)})
    text = fields.String(required=True)
    image_url = fields.String(required=True, allow_none=True, metadata={
        "description": "Absolute URL of the card's PNG (needs the bearer token); null for a greeting."})
    signed_image_url = fields.String(required=True, allow_none=True, metadata={
        "description": "The same PNG, loadable without any header until it expires (IMAGE_URL_TTL_S); null for a greeting."})
    cost = fields.Integer(required=True)
    balance = fields.Integer(required=True, metadata={"description": "Points balance after the charge."})


class FailureSchema(CamelSchema):
    """Why a generation failed."""

    reason = fields.String(required=True)
    retryable = fields.Boolean(required=True)


class GenerationViewSchema(CamelSchema):
    """A generation as listed to its owner."""

    generation_id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": list(KINDS)})
    status = fields.String(required=True, metadata={"enum": [generations.PENDING, generations.COMPLETED, generations.FAILED]})
    occasion = fields.String(required=True)
    recipient_name = fields.String(required=True, allow_none=True)
    tone = fields.String(required=True, allow_none=True)
    language = fields.String(required=True, metadata={"enum": list(LANGUAGES)})
    details = fields.String(required=True, allow_none=True)
    text = fields.String(required=True, allow_none=True)
    title = fields.String(required=True, allow_none=True)
    image_url = fields.String(required=True, allow_none=True, metadata={
        "description": "Absolute URL of the card's PNG (needs the bearer token); null without an image."})
    signed_image_url = fields.String(required=True, allow_none=True, metadata={
        "description": "The same PNG, loadable without any header until it expires (IMAGE_URL_TTL_S)."})
    cost = fields.Integer(required=True)
    refunded = fields.Integer(required=True)
    failure = fields.Nested(FailureSchema, required=True, allow_none=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class GenerationPageSchema(CamelSchema):
    """A page of generations, newest first."""

    items = fields.List(fields.Nested(GenerationViewSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


def has_image(gen: dict) -> bool:
    """True when a completed card has a stored PNG."""
    return bool((gen.get("result") or {}).get("image"))


def image_urls(gen: dict, links: ImageLinks) -> dict:
    """`imageUrl` (bearer) and `signedImageUrl` (no header, expires) of a generation; both null without an image."""
    if not has_image(gen):
        return {"imageUrl": None, "signedImageUrl": None}
    gen_id = str(gen["_id"])
    return {"imageUrl": links.plain(gen_id), "signedImageUrl": links.signed(gen_id, str(gen["user_id"]))}


def result_view(gen: dict, links: ImageLinks) -> dict:
    """The 200 answer of a completed generation (identical on every replay but for the signed URL's expiry)."""
    return {"generationId": str(gen["_id"]), "kind": gen["kind"], "text": gen["result"]["text"],
            **image_urls(gen, links), "cost": gen["cost"], "balance": gen["spend"]["balance_after"]}


def generation_view(gen: dict, links: ImageLinks) -> dict:
    """A generation as listed to its owner."""
    request, result, failure = gen["request"], gen.get("result") or {}, gen.get("failure")
    return {"generationId": str(gen["_id"]), "kind": gen["kind"], "status": gen["status"],
            "occasion": request["occasion"], "recipientName": request.get("recipient_name"),
            "tone": request.get("tone"), "language": request["language"], "details": request.get("details"),
            "text": result.get("text"), "title": result.get("title"), **image_urls(gen, links),
            "cost": gen["cost"], "refunded": generations.answered_refund(gen)["amount"],
            "failure": {"reason": failure["reason"], "retryable": failure["retryable"]} if failure else None,
            "createdAt": iso(gen["created_at"]), "updatedAt": iso(gen["updated_at"])}
