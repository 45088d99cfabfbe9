"""The REST API under /api/v1/: every app's router, and errors answered as translated JSON."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from concilia.assistant.api import router as assistant_router
from concilia.cases.api import router as helpdesk_router
from concilia.core.problems import ApiProblem
from concilia.intake.api import router as intake_router

# What each error status means, for the operations the schema does not already describe it on.
_PROBLEM_STATUSES = {
    400: "The request body is not valid JSON or multipart form data.",
    401: "No valid API token was sent.",
    403: "The token lacks the scope, or its user the permission, needed here.",
    404: "Nothing has this identifier (or it is not the caller's to see).",
    413: "The request body is larger than this server accepts.",
    422: "The request has errors: each field's problem is listed.",
    429: "Too many requests: try again after Retry-After seconds.",
}


class ConciliaAPI(NinjaAPI):
    """The API whose schema documents every error answer an operation can give (the handlers
    below answer them all with the same problem body), not only those a route names."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        for methods in schema["paths"].values():
            for operation in methods.values():
                for status in _problems_of(operation):
                    operation["responses"].setdefault(
                        status,
                        {
                            "description": _PROBLEM_STATUSES[status],
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/ProblemOut"}
                                }
                            },
                        },
                    )
        _add_links(schema["paths"])
        return schema


# OpenAPI links: where the identifier in an answer leads next, for clients and for the stateful
# fuzzer. The answer (method, path, status) -> the path parameter and where the answer holds it.
_LINKS = {
    ("post", "/api/v1/complaints", 201): ("reference", "$response.body#/reference"),
    ("post", "/api/v1/webhooks/endpoints", 201): ("endpoint_id", "$response.body#/id"),
}


def _add_links(paths: dict[str, Any]) -> None:
    """Link each answer of _LINKS to every operation whose only path parameter it gives."""
    for (method, path, status), (name, source) in _LINKS.items():
        links = {
            target["operationId"]: {
                "operationId": target["operationId"],
                "parameters": {name: source},
            }
            for target_path, methods in paths.items()
            if re.findall(r"\{(\w+)\}", target_path) == [name]
            for target in methods.values()
        }
        paths[path][method]["responses"][status]["links"] = links


def _problems_of(operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation may answer, from what it takes and how it is called."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    statuses = []
    if has_body:
        statuses += [400, 413]
    if operation.get("security"):
        statuses += [401, 403, 429]
    elif has_body:
        statuses.append(429)  # anonymous writes are limited per client or conversation
    if any(parameter["in"] == "path" for parameter in parameters):
        statuses.append(404)
    if parameters or has_body:
        statuses.append(422)
    return statuses


api = ConciliaAPI(
    title="Concilia API",
    version="1",
    description="Complaints in, reference numbers out. Authenticate with `Authorization: Bearer <token>`.",
    urls_namespace="api-v1",
)
api.add_router("", intake_router)
api.add_router("", helpdesk_router)
api.add_router("", assistant_router)
api.add_router("/webhooks/", "concilia.integrations.api.router")

_TYPE_MESSAGES = {
    "missing": lambda: _("This field is required."),
    "string_type": lambda: _("Enter text."),
    "bool_type": lambda: _("Enter true or false."),
    "bool_parsing": lambda: _("Enter true or false."),
    "date_type": lambda: _("Enter a date as YYYY-MM-DD."),
    "date_parsing": lambda: _("Enter a date as YYYY-MM-DD."),
    "date_from_datetime_parsing": lambda: _("Enter a date as YYYY-MM-DD."),
    "decimal_parsing": lambda: _("Enter a number."),
    "decimal_type": lambda: _("Enter a number."),
    "list_type": lambda: _("Enter a list."),
    "model_attributes_type": lambda: _("Enter an object."),
    "dict_type": lambda: _("Enter an object."),
    "string_too_long": lambda: _("This value is too long."),
}


def _field_name(location: list[Any]) -> str:
    parts = [p for p in location if p not in ("body", "payload", "query", "path")]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _problem(
    request: HttpRequest,
    status: int,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    response = api.create_response(
        request, {"detail": detail, "errors": errors or []}, status=status
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(ApiProblem)
def on_api_problem(request: HttpRequest, exc: ApiProblem) -> HttpResponse:
    return _problem(request, exc.status, exc.detail, exc.errors, exc.headers)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = []
    for error in exc.errors:
        message = _TYPE_MESSAGES.get(error.get("type", ""), lambda: _("This value is not valid."))()
        errors.append(
            {
                "field": _field_name(list(error.get("loc", []))),
                "code": error.get("type", "invalid"),
                "message": message,
            }
        )
    return _problem(request, 422, _("The request has errors."), errors)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _problem(
        request, 401, _("A valid API token is needed: send 'Authorization: Bearer <token>'.")
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    detail = str(exc)
    if exc.status_code == 400 and detail.startswith("Cannot parse request body"):
        detail = _("The request body is not valid JSON (or is too large).")
    return _problem(request, exc.status_code, detail)


@api.exception_handler(MultiPartParserError)
def on_unreadable_multipart(request: HttpRequest, exc: MultiPartParserError) -> HttpResponse:
    return _problem(request, 400, _("The request body is not valid multipart form data."))


@api.exception_handler(RequestDataTooBig)
@api.exception_handler(TooManyFieldsSent)
@api.exception_handler(TooManyFilesSent)
def on_too_large(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Django refuses these before reading the body (DATA_UPLOAD_MAX_MEMORY_SIZE and the field
    # counts); without a handler they became its HTML 400 page instead of the API's JSON.
    return _problem(request, 413, _("The request is larger than this server accepts."))


@api.exception_handler(PermissionDenied)
def on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _problem(request, 403, _("You may not do this."))


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _problem(request, 404, _("Not found."))
