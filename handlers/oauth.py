"""Sign in with Google and VK ID: sign-in answering exactly like login, link, unlink and the linked list.

The provider is verified server-side (oauth/), then documents/accounts/identities.py applies the account rules.
Sign-in and link answer 404 `provider_not_configured` until the provider's client id is set; unlinking and
listing need nothing from the provider, so they work for any known provider.

Each provider has its own routes and handler classes because each takes its own body: one declared
schema per verb keeps validation and the OpenAPI document identical. Other provider names answer the
JSON 404 `unknown_provider`.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from marshmallow import ValidationError, fields, validate, validates_schema

from documents import accounts
from handlers.auth import AuthHandlerMixin, SignInSchema
from handlers.base import ApiError, public
from handlers.docs import api
from handlers.routing import NotFoundHandler
from handlers.schemas import CamelSchema, Identifier, Text, iso, present
from oauth import PROVIDERS, InvalidProviderToken, ProviderIdentity, ProviderUnavailable

OTHER_PROVIDER = r"/api/auth/oauth/[a-z0-9]{1,16}(?:/link)?"  # names we do not know: 404 unknown_provider
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
    OPENAPI_RULES = {"oneOf": [
        {**present("accessToken"), "not": {"anyOf": [present("code"), present("codeVerifier"), present("vkDeviceId")]}},
        {**present("code", "codeVerifier", "vkDeviceId"), "not": present("accessToken")},
    ]}

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


GOOGLE_SIGN_IN_ERRORS = {401: ["invalid_provider_token"], 404: ["provider_not_configured"],
                         409: ["account_exists_link_required"], 503: ["provider_unavailable"]}
GOOGLE_LINK_ERRORS = {401: ["invalid_provider_token"], 404: ["provider_not_configured", "user_not_found"],
                      409: ["identity_linked_elsewhere", "provider_already_linked"], 503: ["provider_unavailable"]}
# VK also refuses SDK access tokens unless VK_SERVICE_TOKEN lets the server check them.
VK_SIGN_IN_ERRORS = {**GOOGLE_SIGN_IN_ERRORS, 400: ["vk_access_token_not_accepted"]}
VK_LINK_ERRORS = {**GOOGLE_LINK_ERRORS, 400: ["vk_access_token_not_accepted"]}
UNLINK_ERRORS = {404: ["identity_not_found", "user_not_found"], 409: ["last_sign_in_method"]}


def identities_view(user: dict) -> dict:
    """The caller's linked providers and whether password sign-in is possible."""
    return {
        "identities": [{"provider": i["provider"], "linkedAt": iso(i.get("linked_at")), "email": i.get("email")}
                       for i in user.get("identities") or []],
        "passwordSignIn": accounts.can_sign_in_with_password(user),
    }


class OAuthHandler(AuthHandlerMixin):
    """Shared by the provider routes: configuration check, verification with the provider, the account rules."""

    provider = ""  # each provider's handlers set their name

    def configured_provider(self) -> str:
        """The provider name, or 404 provider_not_configured until its client id is set here."""
        if not self.ctx.oauth.configured(self.provider):
            raise ApiError(404, "provider_not_configured", f"Sign-in with {self.provider} is not configured on this server.",
                           details={"provider": self.provider})
        return self.provider

    async def verify(self) -> tuple[ProviderIdentity, dict]:
        """Validate the body and have the provider vouch for it; 401 invalid, 503 provider unreachable."""
        provider = self.configured_provider()
        body = self.load()
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

    async def sign_in(self) -> None:
        """Sign in with the provider, answering like login (201 when the account is new)."""
        identity, body = await self.verify()
        now, device_id = self.ctx.now(), body["device_id"]
        user = await accounts.find_user_by_identity(self.db, self.provider, identity.subject)
        created = False
        if user is None:
            user, created = await self.run(accounts.create_user_with_identity(
                self.db, self.provider, identity.subject, identity.email, device_id, now))
        if not created:
            await accounts.remember_device(self.db, user["_id"], device_id, now)
        session_id, refresh = await self.start_session(user["_id"], device_id)
        self.write_tokens(user["_id"], session_id, refresh, 201 if created else 200, device_id=device_id)

    async def link(self) -> None:
        """Link the provider account to the signed-in account."""
        identity, _ = await self.verify()
        user = await self.run(accounts.link_identity(
            self.db, accounts.parse_id(self.user_id), self.provider, identity.subject, identity.email, self.ctx.now()))
        self.write_json(identities_view(user))

    async def unlink(self) -> None:
        """Remove the caller's identity of this provider (needs nothing from the provider)."""
        user_id = accounts.parse_id(self.user_id)
        await self.run(accounts.unlink_identity(self.db, user_id, self.provider, self.ctx.now()))
        self.write_no_content()


class GoogleHandler(OAuthHandler):
    """POST /api/auth/oauth/google — sign in with Google; DELETE — unlink Google from the caller's account."""

    provider = "google"

    @public
    @api("Sign in with a Google ID token (201 when the account is new)", body=GoogleSignInSchema,
         responses={200: SignInSchema, 201: SignInSchema}, errors=GOOGLE_SIGN_IN_ERRORS)
    async def post(self) -> None:
        await self.sign_in()

    @api("Unlink Google from your account", responses={204: None}, errors=UNLINK_ERRORS)
    async def delete(self) -> None:
        await self.unlink()


class GoogleLinkHandler(OAuthHandler):
    """POST /api/auth/oauth/google/link — link a Google account to the signed-in account."""

    provider = "google"

    @api("Link a Google account to yours", body=GoogleSignInSchema, responses={200: IdentityListSchema},
         errors=GOOGLE_LINK_ERRORS)
    async def post(self) -> None:
        await self.link()


class VkHandler(OAuthHandler):
    """POST /api/auth/oauth/vk — sign in with VK ID; DELETE — unlink VK ID from the caller's account."""

    provider = "vk"

    @public
    @api("Sign in with VK ID: code + PKCE verifier, or an SDK access token (201 when the account is new)",
         body=VkSignInSchema, responses={200: SignInSchema, 201: SignInSchema}, errors=VK_SIGN_IN_ERRORS)
    async def post(self) -> None:
        await self.sign_in()

    @api("Unlink VK ID from your account", responses={204: None}, errors=UNLINK_ERRORS)
    async def delete(self) -> None:
        await self.unlink()


class VkLinkHandler(OAuthHandler):
    """POST /api/auth/oauth/vk/link — link a VK ID account to the signed-in account."""

    provider = "vk"

    @api("Link a VK ID account to yours", body=VkSignInSchema, responses={200: IdentityListSchema}, errors=VK_LINK_ERRORS)
    async def post(self) -> None:
        await self.link()


class IdentitiesHandler(AuthHandlerMixin):
    """GET /api/auth/oauth — the caller's linked providers and whether password sign-in works."""

    @api("Your linked sign-in providers", responses={200: IdentityListSchema}, errors={404: ["user_not_found"]})
    async def get(self) -> None:
        user = await self.run(accounts.get_user(self.db, self.user_id))
        self.write_json(identities_view(user))


class UnknownProviderHandler(NotFoundHandler):
    """Any other provider name: the JSON 404 naming the providers this server knows (not an operation)."""

    def _unknown(self, *args: Any, **kwargs: Any) -> None:
        raise ApiError(404, "unknown_provider", f"Sign-in providers are: {', '.join(PROVIDERS)}.")

    get = head = post = put = patch = delete = public(_unknown)  # type: ignore[assignment]


default_handlers = [
    (r"/api/auth/oauth", IdentitiesHandler),
    (r"/api/auth/oauth/google", GoogleHandler),
    (r"/api/auth/oauth/google/link", GoogleLinkHandler),
    (r"/api/auth/oauth/vk", VkHandler),
    (r"/api/auth/oauth/vk/link", VkLinkHandler),
    (OTHER_PROVIDER, UnknownProviderHandler),
]
