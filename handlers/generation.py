"""Paid AI greetings over HTTP: request (charge, generate, refund on failure), read, history, card image.

`tone` is free text of up to 30 characters: the generation package maps the names of TONES and
their Russian and English synonyms ("тёплый", "official", ...) to a tone and treats anything else
as "warm", so apps may pass what their users pick without a fixed list.  `imageUrl` is always
present: the card's absolute image URL (bearer token) next to `signedImageUrl` (no header until it
expires, see `handlers.image_links`), both null for a greeting.  The rules (states, keys, refunds) live
in `documents.generations.store`; this module only orders the steps around the provider and renderer.
"""

from __future__ import annotations

import asyncio

from loguru import logger
from marshmallow import fields, validate

from core.context import AppContext
from core.cpu import CpuBusy
from core.metrics import GENERATIONS
from documents import accounts, generations, wallet
from generation import KINDS, LANGUAGES, GenerationFailed, GenerationRequest, GenerationResult, render_postcard
from handlers.base import ApiError, APIHandler
from handlers.docs import api
from handlers.generation_image import SignedImageHandler
from handlers.generation_views import (
    GenerationPageSchema,
    GenerationResultSchema,
    GenerationViewSchema,
    generation_view,
    has_image,
    result_view,
)
from handlers.image_links import links_for
from handlers.points import CHARGE_ERRORS, PageQuery, decode_cursor, encode_cursor, idempotency_key, ledger_error
from handlers.schemas import CamelSchema, Text

CARD_SIZE = (1200, 800)
# The OpenAI-compatible provider enforces AI_TIMEOUT_S itself; this only bounds a provider that hangs.
GUARD_S = 5.0


class RenderFailed(Exception):
    """The postcard could not be rendered (a full CPU queue is worth retrying, a renderer bug is not)."""

    def __init__(self, retryable: bool) -> None:
        super().__init__("postcard rendering failed")
        self.retryable = retryable


class GenerationRequestSchema(CamelSchema):
    """POST /api/generation/request body."""

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    occasion = Text(required=True, min_length=1, max_length=100)
    recipient_name = Text(max_length=80, load_default=None)
    tone = Text(max_length=30, load_default=None)
    language = fields.String(load_default="ru", validate=validate.OneOf(LANGUAGES))
    details = Text(max_length=500, load_default=None)


REQUEST_ERRORS = {**CHARGE_ERRORS, 409: ["generation_in_progress"], 502: ["generation_failed"]}


async def failed_error(ctx: AppContext, gen: dict) -> ApiError:
    """The 502 answer of a failed generation, settling its refund first if still due."""
    gen, _ = await generations.settle_refund(ctx.db, gen, ctx.now())
    refund = generations.answered_refund(gen)
    balance = refund["balance_after"]
    if balance is None:
        balance = (await wallet.get_balance(ctx.db, gen["user_id"])).balance
    return ApiError(502, "generation_failed", "The greeting could not be generated; your points were returned.",
                    details={"refunded": refund["amount"], "balance": balance,
                             "retryable": gen["failure"]["retryable"], "generationId": str(gen["_id"])})


async def produce(ctx: AppContext, gen: dict) -> tuple[GenerationResult, bytes | None]:
    """Ask the provider for the text (and render the card); raise GenerationFailed on any failure."""
    request = gen["request"]
    # Seeded by the generation id: the offline provider reproduces the same text for this record.
    wanted = GenerationRequest(kind=gen["kind"], occasion=request["occasion"], recipient_name=request.get("recipient_name"),
                               tone=request.get("tone"), language=request["language"], details=request.get("details"),
                               seed=str(gen["_id"]))
    try:
        result = await asyncio.wait_for(ctx.generator.generate(wanted), ctx.settings.ai_timeout_s + GUARD_S)
    except TimeoutError:
        raise GenerationFailed("timeout", retryable=True, detail="no answer in time") from None
    if gen["kind"] != "card":
        return result, None
    try:
        png = await ctx.cpu.run(render_postcard, result.text, title=result.title, occasion=request["occasion"],
                                language=request["language"], size=CARD_SIZE)
    except CpuBusy:
        raise RenderFailed(retryable=True) from None
    except Exception as exc:
        logger.opt(exception=exc).error("postcard rendering failed", generation_id=str(gen["_id"]))
        raise RenderFailed(retryable=False) from None
    return result, png


def failure_of(exc: Exception) -> tuple[str, bool]:
    """(reason, retryable) stored for a failed generation."""
    if isinstance(exc, GenerationFailed):
        return exc.reason, exc.retryable
    if isinstance(exc, RenderFailed):
        return "render_failed", exc.retryable
    logger.opt(exception=exc).error("generation crashed")
    return "internal_error", False


async def generate(ctx: AppContext, gen: dict, spend: wallet.LedgerResult) -> dict:
    """Run a charged generation to its end state; return the completed doc or raise the 502."""
    provider = ctx.generator.name
    try:
        result, png = await produce(ctx, gen)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the customer gets the points back
        reason, retryable = failure_of(exc)
        failed = await generations.fail_generation(ctx.db, gen["_id"], reason, retryable, ctx.now())
        GENERATIONS.labels(provider, "failed").inc()
        raise await failed_error(ctx, failed or await generations.get_generation(ctx.db, gen["user_id"], gen["_id"])) from None
    if png is not None:
        await generations.save_image(ctx.db, gen, png, CARD_SIZE, ctx.now())
    done = await generations.complete_generation(
        ctx.db, gen, {"text": result.text, "title": result.title, "model": result.model, "image": png is not None},
        spend, ctx.now())
    if done is None:  # the repair job gave up on it first: its failed state (and refund) stands
        await generations.discard_image(ctx.db, gen["_id"])
        GENERATIONS.labels(provider, "late").inc()
        raise await failed_error(ctx, await generations.get_generation(ctx.db, gen["user_id"], gen["_id"]))
    GENERATIONS.labels(provider, "completed").inc()
    return done


class RequestHandler(APIHandler):
    """POST /api/generation/request — charge, generate, and refund if it fails; once per Idempotency-Key."""

    @api("Generate a greeting or card for points, once per Idempotency-Key (refunded if it fails)",
         body=GenerationRequestSchema, responses={200: GenerationResultSchema}, errors=REQUEST_ERRORS,
         idempotency_key=True)
    async def post(self) -> None:
        key = idempotency_key(self)
        body = self.load()
        kind = body.pop("kind")
        request = {name: value or None for name, value in body.items()}  # "" and absent mean the same
        cost = getattr(self.ctx.settings, f"generation_cost_{kind}")
        user_id = accounts.parse_id(self.user_id)
        try:
            gen, created = await generations.start_generation(
                self.db, user_id, key, kind, request, cost, self.ctx.generator.name, self.ctx.now())
        except generations.GenerationKeyMismatch as exc:
            raise ApiError(422, exc.reason, str(exc)) from None
        if not created:
            return await self.replay(gen)
        try:
            spend = await generations.charge(self.db, gen, self.ctx.now())
        except wallet.LedgerError as exc:
            if isinstance(exc, wallet.InsufficientPoints):
                GENERATIONS.labels(self.ctx.generator.name, "insufficient_points").inc()
            raise ledger_error(exc, cost) from None
        self.write_json(result_view(await generate(self.ctx, gen, spend), links_for(self)))

    async def replay(self, gen: dict) -> None:
        """Answer a repeated key from the stored generation, never charging again."""
        if gen["status"] == generations.COMPLETED:
            return self.write_json(result_view(gen, links_for(self)))
        if gen["status"] == generations.FAILED:
            raise await failed_error(self.ctx, gen)
        raise ApiError(409, "generation_in_progress", "This generation is still running; retry shortly.",
                       headers={"Retry-After": "2"})


class GenerationHandler(APIHandler):
    """GET /api/generation/{id} — one of the caller's generations."""

    @api("One of your generations", responses={200: GenerationViewSchema}, errors={404: ["generation_not_found"]})
    async def get(self, generation_id: str) -> None:
        gen = await self.run(generations.get_generation(self.db, accounts.parse_id(self.user_id), generation_id))
        self.write_json(generation_view(gen, links_for(self)))


class ImageHandler(APIHandler):
    """GET /api/generation/{id}/image — a completed card's PNG, to its owner only."""

    @api("A completed card's PNG image", responses={200: "image/png"},
         errors={404: ["generation_not_found", "image_not_found"]})
    async def get(self, generation_id: str) -> None:
        user_id = accounts.parse_id(self.user_id)
        gen = await self.run(generations.get_generation(self.db, user_id, generation_id))
        png = await generations.find_image(self.db, user_id, gen["_id"]) if has_image(gen) else None
        if png is None:
            raise ApiError(404, "image_not_found", "This generation has no image.")
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "private, max-age=86400")
        self.finish(png)


class GenerationHistoryHandler(APIHandler):
    """GET /api/generation/history — the caller's generations newest first, cursor-paginated."""

    @api("Your generations, newest first", query=PageQuery, responses={200: GenerationPageSchema},
         errors={400: ["invalid_cursor"]})
    async def get(self) -> None:
        query = self.load_query()
        before = None
        if query["cursor"] is not None:
            before = accounts.parse_id(decode_cursor("gen", query["cursor"]))
            if before is None:
                raise ApiError(400, "invalid_cursor", "The cursor is not one this API returned.")
        limit = query["limit"]
        found = await generations.list_generations(self.db, accounts.parse_id(self.user_id), limit=limit + 1, before_id=before)
        page = found[:limit]
        links = links_for(self)
        self.write_json({"items": [generation_view(gen, links) for gen in page],
                         "nextCursor": encode_cursor("gen", page[-1]["_id"]) if len(found) > limit else None})


default_handlers = [
    (r"/api/generation/request", RequestHandler),
    (r"/api/generation/history", GenerationHistoryHandler),
    (r"/api/generation/([^/]+)/image", ImageHandler),
    (r"/api/generation/([^/]+)/image/signed", SignedImageHandler),
    (r"/api/generation/([^/]+)", GenerationHandler),
]
