"""One rule for query parameters on every route: a name the route does not declare is a 422.

FastAPI ignores query parameters a route does not declare, unless they are gathered in a model
with extra="forbid" (the admin lists). A typo or a filter that does not exist (`/v1/imports?state=
failed`) then silently returns everything; this app-wide dependency refuses it the same way
everywhere, with the error shape pydantic gives an extra field.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel

_declared: dict[int, frozenset[str]] = {}


def declared_query_names(dependant: Dependant) -> frozenset[str]:
    """Every query name a route reads, its dependencies' included: plain parameters and the fields of
    query-parameter models."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        pending.extend(current.dependencies)
        for param in current.query_params:
            annotation = param.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names.update(field.alias or name for name, field in annotation.model_fields.items())
            else:
                names.add(param.alias)
    return frozenset(names)


async def reject_unknown_query_params(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    names = _declared.get(id(route))
    if names is None:
        names = _declared[id(route)] = declared_query_names(route.dependant)
    unknown = sorted(set(request.query_params.keys()) - names)
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("query", name), "msg": "Extra inputs are not permitted"}
                for name in unknown
            ]
        )
