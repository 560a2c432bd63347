"""GET /api/generation/{id}/image/signed — a card's PNG for an image loader: no header, a signature that expires."""

from __future__ import annotations

from documents import generations
from documents.accounts import parse_id
from handlers.base import ApiError, APIHandler, public
from handlers.docs import api
from handlers.image_links import KEY_LABEL, check
from handlers.schemas import CamelSchema, Text

CACHE = "private, max-age=300"


class SignedImageQuery(CamelSchema):
    """The query of a `signedImageUrl`: owner, expiry (Unix seconds) and signature, exactly as answered."""

    # Lenient on purpose: anything but the exact answered values is 403 invalid_image_signature, not a 400.
    u = Text(max_length=64, strip=False, load_default="", metadata={"description": "The owner's user id"})
    e = Text(max_length=16, strip=False, load_default="", metadata={"description": "Expiry, Unix seconds"})
    s = Text(max_length=64, strip=False, load_default="",
             metadata={"description": "HMAC-SHA256 signature (URL-safe Base64)"})


class SignedImageHandler(APIHandler):
    """Public, but only with a valid unexpired signature over (generation, owner, expiry)."""

    @public
    @api("A card's PNG through its signedImageUrl (no Authorization header; refused once expired)",
         query=SignedImageQuery, responses={200: "image/png"},
         errors={403: ["invalid_image_signature", "image_url_expired"], 404: ["image_not_found"]})
    async def get(self, generation_id: str) -> None:
        query = self.load_query()
        key = self.ctx.tokens.derived_key(KEY_LABEL)
        problem = check(key, generation_id, query["u"], query["e"], query["s"], self.ctx.now().timestamp())
        if problem == "expired":
            raise ApiError(403, "image_url_expired", "This image link has expired; read the generation again for a new one.")
        if problem is not None:
            raise ApiError(403, "invalid_image_signature", "This image link is not valid.")
        user_id, gen_id = parse_id(query["u"]), parse_id(generation_id)
        png = await generations.find_image(self.db, user_id, gen_id) if user_id and gen_id else None
        if png is None:  # signed, but the card (or its account) is gone
            raise ApiError(404, "image_not_found", "No such image.")
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", CACHE)
        self.finish(png)
