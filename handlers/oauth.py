"""Sign in with Google and VK ID: sign-in answering exactly like login, link, unlink and the linked list.

The provider is verified server-side (oauth/), then documents/identities.py applies the account rules.
Sign-in and link answer 404 `provider_not_configured` until the provider's client id is set; unlinking and
listing need nothing from the provider, so they work for any known provider.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from marshmallow import ValidationError, fields, validate, validates_schema

from documents import identities as identities_doc
from documents import users as users_doc
from handlers.auth import AuthHandlerMixin
from handlers.base import ApiError, public
from handlers.schemas import CamelSchema, Identifier, Text, iso
from oauth import PROVIDERS, InvalidProviderToken, ProviderIdentity, ProviderUnavailable

PROVIDER = r"([a-z0-9]{1,16})"  # any word, so unknown providers get a JSON 404 after authentication
PKCE_VERIFIER = r"^[A-Za-z0-9_\-.~]{43,128}$"  # RFC 7636 code_verifier alphabet and length
RETRY_AFTER_S = "5"


class GoogleSignInSchema(CamelSchema):
    """Google: the ID token from Credential Manager / Google Identity Services, plus our device id."""

    id_token = Text(required=True, min_length=1, max_length=4096)
    device_id = Identifier(max_length=128, load_default=None)


class VkSignInSchema(CamelSchema):
    """VK ID: the code with its PKCE verifier and VK's device id, or an SDK access token; plus our device id."""

    code = Text(min_length=1, max_length=2048, load_default=None)
    code_verifier = Text(max_length=128, validate=[validate.Regexp(PKCE_VERIFIER)], load_default=None)
    vk_device_id = Text(min_length=1, max_length=256, load_default=None)
    state = Text(min_length=1, max_length=256, load_default=None)
    redirect_uri = Text(min_length=1, max_length=512, load_default=None)
    access_token = Text(min_length=1, max_length=4096, load_default=None)
    device_id = Identifier(max_length=128, load_default=None)

    @validates_schema
    def _one_flow(self, data: dict, **kwargs: Any) -> None:
        code_flow = [data.get(k) for k in ("code", "code_verifier", "vk_device_id")]
        if data.get("access_token") is not None:
            if any(v is not None for v in code_flow):
                raise ValidationError("Send accessToken or code, codeVerifier and vkDeviceId, not both.", "_schema")
        elif any(v is None for v in code_flow):
            raise ValidationError("Send code, codeVerifier and vkDeviceId (or accessToken).", "_schema")


class IdentitySchema(CamelSchema):
    """One linked provider account as its owner sees it."""

    provider = fields.String(required=True, metadata={"enum": list(PROVIDERS)})
    linked_at = fields.String(required=True)
    email = fields.String(allow_none=True, metadata={"description": "The email the provider vouched for, if any."})


class IdentityListSchema(CamelSchema):
    """GET /api/auth/oauth and the link answer."""

    identities = fields.List(fields.Nested(IdentitySchema), required=True)
    password_sign_in = fields.Boolean(required=True, metadata={"description": "Email and password sign-in works."})


SCHEMAS = {"google": GoogleSignInSchema, "vk": VkSignInSchema}


def identities_view(user: dict) -> dict:
    """The caller's linked providers and whether password sign-in is possible."""
    return {
        "identities": [{"provider": i["provider"], "linkedAt": iso(i.get("linked_at")), "email": i.get("email")}
                       for i in user.get("identities") or []],
        "passwordSignIn": identities_doc.can_sign_in_with_password(user),
    }


class OAuthHandler(AuthHandlerMixin):
    """Shared by the OAuth routes: provider lookup, verification with the provider, error mapping."""

    def known_provider(self, name: str) -> str:
        """The provider name, or 404 unknown_provider."""
        if name not in PROVIDERS:
            raise ApiError(404, "unknown_provider", f"Sign-in providers are: {', '.join(PROVIDERS)}.")
        return name

    def configured_provider(self, name: str) -> str:
        """The provider name, or 404 when it is unknown or not configured here."""
        provider = self.known_provider(name)
        if not self.ctx.oauth.configured(provider):
            raise ApiError(404, "provider_not_configured", f"Sign-in with {provider} is not configured on this server.",
                           details={"provider": provider})
        return provider

    async def verify(self, provider: str) -> tuple[ProviderIdentity, dict]:
        """Validate the body and have the provider vouch for it; 401 invalid, 503 provider unreachable."""
        body = self.load(SCHEMAS[provider]())
        try:
            if provider == "google":
                identity = await self.ctx.oauth.google.verify(body["id_token"])
            else:
                identity = await self._verify_vk(body)
        except InvalidProviderToken as exc:
            logger.info("{} sign-in refused: {}", provider, exc.detail, request_id=self.request_id)
            raise ApiError(401, "invalid_provider_token", "The provider's token or code is invalid or expired.",
                           details={"provider": provider}) from None
        except ProviderUnavailable as exc:
            logger.warning("{} unavailable: {}", provider, exc.detail, request_id=self.request_id)
            raise ApiError(503, "provider_unavailable", f"Sign-in with {provider} is unavailable; retry shortly.",
                           details={"provider": provider, "retryable": True},
                           headers={"Retry-After": RETRY_AFTER_S}) from None
        return identity, body

    async def _verify_vk(self, body: dict) -> ProviderIdentity:
        vk = self.ctx.oauth.vk
        if body["access_token"] is not None:
            if not vk.accepts_access_tokens:
                raise ApiError(400, "vk_access_token_not_accepted",
                               "This server signs in with VK ID's code: send code, codeVerifier and vkDeviceId.")
            return await vk.sign_in_with_access_token(body["access_token"])
        allowed = vk.config.allowed_redirect_uris
        redirect_uri = body["redirect_uri"] or allowed[0]
        if redirect_uri not in allowed:
            raise ApiError(400, "validation_failed", "Some fields are invalid.",
                           details={"fields": {"redirectUri": ["Not one of this server's VK ID redirect URIs."]}})
        return await vk.sign_in_with_code(code=body["code"], code_verifier=body["code_verifier"],
                                          device_id=body["vk_device_id"], redirect_uri=redirect_uri, state=body["state"])


class OAuthSignInHandler(OAuthHandler):
    """POST /api/auth/oauth/{provider} — sign in (201 new account); DELETE — unlink the caller's identity."""

    @public
    async def post(self, name: str) -> None:
        provider = self.configured_provider(name)
        identity, body = await self.verify(provider)
        now, device_id = self.ctx.now(), body["device_id"]
        user = await identities_doc.find_user_by_identity(self.db, provider, identity.subject)
        created = False
        if user is None:
            user, created = await self.run(identities_doc.create_user_with_identity(
                self.db, provider, identity.subject, identity.email, device_id, now))
        if not created:
            await users_doc.remember_device(self.db, user["_id"], device_id, now)
        session_id, refresh = await self.start_session(user["_id"], device_id)
        self.write_tokens(user["_id"], session_id, refresh, 201 if created else 200)

    async def delete(self, name: str) -> None:
        provider = self.known_provider(name)
        user_id = users_doc.parse_id(self.user_id)
        await self.run(identities_doc.unlink_identity(self.db, user_id, provider, self.ctx.now()))
        self.write_no_content()


class OAuthLinkHandler(OAuthHandler):
    """POST /api/auth/oauth/{provider}/link — link a provider account to the signed-in account."""

    async def post(self, name: str) -> None:
        provider = self.configured_provider(name)
        identity, _ = await self.verify(provider)
        user_id = users_doc.parse_id(self.user_id)
        user = await self.run(identities_doc.link_identity(
            self.db, user_id, provider, identity.subject, identity.email, self.ctx.now()))
        self.write_json(identities_view(user))


class IdentitiesHandler(OAuthHandler):
    """GET /api/auth/oauth — the caller's linked providers and whether password sign-in works."""

    async def get(self) -> None:
        user = await self.run(users_doc.get_user(self.db, self.user_id))
        self.write_json(identities_view(user))


default_handlers = [
    (r"/api/auth/oauth", IdentitiesHandler),
    (rf"/api/auth/oauth/{PROVIDER}", OAuthSignInHandler),
    (rf"/api/auth/oauth/{PROVIDER}/link", OAuthLinkHandler),
]
