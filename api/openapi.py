"""The OpenAPI document: errors as application/problem+json, and the security schemes documented."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.problems import PROBLEM_MEDIA_TYPE

# Headers the API sets on responses that clients should know about.
_ERROR_HEADERS: dict[str, dict[str, dict[str, Any]]] = {
    "401": {"WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string"}}},
    "429": {"Retry-After": {"description": "Seconds until a retry may pass", "schema": {"type": "integer"}}},
    "503": {"Retry-After": {"description": "Seconds before retrying", "schema": {"type": "integer"}}},
}
_COMMON_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"description": "The request's id (the caller's, or generated)", "schema": {"type": "string"}}
}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    _fix_responses(operation.get("responses", {}))
            # FastAPI's validation schemas are unused: 422 is a problem document like every error.
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _fix_responses(responses: dict[str, Any]) -> None:
    for status, response in responses.items():
        headers = response.setdefault("headers", {})
        headers.update(_COMMON_HEADERS)
        if status[0] in "45":
            headers.update(_ERROR_HEADERS.get(status, {}))
            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
