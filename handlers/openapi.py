"""The OpenAPI 3.1 document, generated from the routes and their @api declarations (apispec + marshmallow).

Path parameters come from the route regexes and the verb's argument names; request and response
bodies from the same schema classes the handlers validate with; security from `@public`; error
responses list their stable `reason` values. A route without a declaration is a build error, so
the document always covers every route.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, resolver
from marshmallow import Schema

from handlers.base import APIHandler, verb_auth
from handlers.docs import IDEMPOTENCY_KEY_PATTERN, all_errors, operation_of
from handlers.routing import NotFoundHandler
from handlers.schemas import ErrorSchema, camelcase

GROUP = re.compile(r"\(([^()]*)\)")
# Built documents by route table: make_app runs for every app the tests start, and a build takes ~20 ms.
_BUILT: dict[tuple, dict] = {}
IDEMPOTENCY_HEADER = {
    "in": "header", "name": "Idempotency-Key", "required": True,
    "description": "Your unique key for this operation; a replay returns the first answer and changes nothing.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
}


def _schema_name(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = resolver(cls)
    return name or cls.__name__


def _path(pattern: str, handler: type, method: Any) -> tuple[str, list[dict]]:
    """Turn a route regex into an OpenAPI path template and its parameters."""
    names = [p for p in inspect.signature(method).parameters if p not in ("self", "args", "kwargs")]
    params: list[dict] = []
    groups = GROUP.findall(pattern)
    path = pattern
    for index, regex in enumerate(groups):
        name = camelcase(names[index]) if index < len(names) else f"param{index}"
        path = path.replace(f"({regex})", "{" + name + "}", 1)
        schema: dict[str, Any] = {"type": "string"}
        if "|" in regex and re.fullmatch(r"[\w|]+", regex):
            schema["enum"] = regex.split("|")
        else:
            schema["pattern"] = f"^{regex}$"
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
    return path.rstrip("$"), params


def _content(schema: type[Schema] | str) -> dict:
    if isinstance(schema, str):
        # A JSON answer without a marshmallow schema (the OpenAPI document itself) is still an object.
        described = {"type": "object"} if schema.endswith("json") else {"type": "string", "format": "binary"}
        return {schema: {"schema": described}}
    return {"application/json": {"schema": schema}}


def _body_required(body: type[Schema] | None, raw_body: type[Schema] | None) -> bool:
    """Whether a request must carry a body: an empty JSON body is read as `{}`, so only required fields need one."""
    if body is None:
        return raw_body is not None
    # An either/or body (OPENAPI_RULES) needs at least one of its fields, so `{}` is not enough either.
    return bool(getattr(body, "OPENAPI_RULES", None)) or any(f.required for f in body._declared_fields.values())


def build_spec(routes: list[tuple], *, title: str = "RuStore backend API", version: str = "1.0.0") -> dict:
    """The OpenAPI document of every documented route (raises if a route's verb is undocumented)."""
    spec = APISpec(title=title, version=version, openapi_version="3.1.0", plugins=[MarshmallowPlugin()],
                   info={"description": "REST backend for apps that sell through RuStore. Every error uses the "
                                        "Error schema; `reason` is stable and meant for code."})
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.security_scheme("serverApiKey", {
        "type": "http", "scheme": "bearer", "bearerFormat": "sk_...",
        "description": "A server API key from SERVER_API_KEYS, for the app team's own services (never a user's token)."})
    spec.components.schema("Error", schema=ErrorSchema)
    missing = []
    bodies: set[type[Schema]] = set()
    for pattern, handler, *_ in routes:
        if not issubclass(handler, APIHandler) or issubclass(handler, NotFoundHandler):
            continue  # static assets, and 404 fallbacks (the catch-all, unknown providers) are not operations
        operations: dict[str, dict] = {}
        path = pattern
        for verb in handler.allowed_methods():
            if verb in ("OPTIONS", "HEAD"):
                continue
            method = getattr(handler, verb.lower())
            op = operation_of(method)
            if op is None:
                missing.append(f"{verb} {pattern}")
                continue
            auth = verb_auth(method)
            public = auth != "bearer"  # API-key verbs declare their own 401 reason
            path, params = _path(pattern, handler, method)
            if op.query is not None:
                params.append({"in": "query", "schema": op.query})
            if op.idempotency_key:
                params.append(dict(IDEMPOTENCY_HEADER))
            responses: dict[str, Any] = {}
            for status, schema in op.responses.items():
                entry: dict[str, Any] = {"description": "Success" if status < 300 else "Result"}
                if schema is not None:
                    entry["content"] = _content(schema)
                responses[str(status)] = entry
            for status, reasons in all_errors(op, public=public, path_params=any(p["in"] == "path" for p in params)).items():
                responses[str(status)] = {
                    "description": "Error; `reason` is one of: " + ", ".join(f"`{r}`" for r in reasons),
                    "content": {"application/json": {"schema": {"allOf": [{"$ref": "#/components/schemas/Error"}],
                                                                "properties": {"reason": {"enum": reasons}}}}},
                }
            operation: dict[str, Any] = {
                "summary": op.summary, "operationId": f"{verb.lower()}_{handler.__name__}",
                "tags": [handler.__module__.rsplit(".", 1)[-1]], "parameters": params, "responses": responses,
                "security": {"public": [], "api_key": [{"serverApiKey": []}]}.get(auth, [{"bearerAuth": []}]),
            }
            if op.description:
                operation["description"] = op.description
            if op.body is not None or op.raw_body is not None:
                bodies.add(op.body or op.raw_body)
                operation["requestBody"] = {"required": _body_required(op.body, op.raw_body),
                                            "content": _content(op.body or op.raw_body)}
            operations[verb.lower()] = operation
        if operations:
            spec.path(path=path, operations=operations)
    if missing:
        raise RuntimeError("Routes without an @api declaration: " + ", ".join(missing))
    return _with_body_rules(spec.to_dict(), bodies)


def _with_body_rules(doc: dict, bodies: set[type[Schema]]) -> dict:
    """Add what marshmallow fields cannot say (a body schema's `OPENAPI_RULES`: oneOf/anyOf of either/or fields)."""
    components = doc.get("components", {}).get("schemas", {})
    for body in bodies:
        rules = getattr(body, "OPENAPI_RULES", None)
        if rules and _schema_name(body) in components:
            components[_schema_name(body)].update(rules)
    return doc


def spec_for(routes: list[tuple]) -> dict:
    """The document of a route table, built once per distinct table (shared: treat it as read-only)."""
    key = tuple((rule[0], rule[1]) for rule in routes)
    if key not in _BUILT:
        _BUILT[key] = build_spec(routes)
    return _BUILT[key]
