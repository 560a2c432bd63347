"""The served OpenAPI document as a test oracle: JSON-Schema validation of bodies at any operation's schemas."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:openapi"
JSON = "application/json"


def pointer(*parts: str) -> str:
    """A URI fragment JSON pointer (RFC 6901 escaping, then percent-encoding for the braces of path templates)."""
    return "/" + "/".join(quote(str(p).replace("~", "~0").replace("/", "~1"), safe="") for p in parts)


class Contract:
    """The document's operations, with validators for their request and response bodies.

    OpenAPI 3.1 schemas are JSON Schema 2020-12, so the document itself is registered as one resource and
    `$ref`s into it (`#/components/schemas/...`) resolve as they would for any client generator.
    """

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.registry = Registry().with_resource(BASE, Resource.from_contents(doc, default_specification=DRAFT202012))

    def operations(self) -> list[tuple[str, str, dict]]:
        """Every (method, path template, operation) in the document."""
        return [(method, path, op) for path, item in self.doc["paths"].items() for method, op in item.items()]

    def operation(self, method: str, path: str) -> dict:
        return self.doc["paths"][path][method.lower()]

    def errors_at(self, body: Any, *parts: str) -> list[str]:
        """Why `body` does not match the schema at `parts` inside the document (empty when it matches)."""
        validator = Draft202012Validator({"$ref": BASE + "#" + pointer(*parts)}, registry=self.registry)
        return [f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in validator.iter_errors(body)]

    def request_errors(self, method: str, path: str, body: Any) -> list[str]:
        """Why `body` is not a valid request body of the operation, per the document."""
        return self.errors_at(body, "paths", path, method.lower(), "requestBody", "content", JSON, "schema")

    def check_response(self, method: str, path: str, resp: Any) -> None:
        """Assert the answer's status is documented for the operation and its JSON body matches that status's schema."""
        responses = self.operation(method, path)["responses"]
        status = str(resp.status)
        assert status in responses, f"{method.upper()} {path} answered undocumented {status}: {resp.text[:300]}"
        content = responses[status].get("content") or {}
        if not content:
            assert not resp.text, f"{method.upper()} {path} {status} is documented without a body: {resp.text[:300]}"
            return
        if JSON in content:
            assert resp.json is not None, f"{method.upper()} {path} {status} is not JSON: {resp.text[:300]}"
            errors = self.errors_at(resp.json, "paths", path, method.lower(), "responses", status, "content", JSON, "schema")
            assert not errors, f"{method.upper()} {path} {status} differs from its documented schema: {errors}: {resp.text[:300]}"


def is_public(op: dict) -> bool:
    """True when the operation is documented as reachable without a token."""
    return op.get("security") == []
