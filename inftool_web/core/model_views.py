"""The OpenAI-compatible model endpoint under /v1/, served from a local checkpoint.

Requests run in their own threads so that concurrent callers reach the embedded backend
together and share its batches; several Celery workers can point their ``openai`` backend
here and share one loaded model.  Clients authenticate with ``Authorization: Bearer
<API token>`` (the same tokens as the REST API); GET also accepts a logged-in session.
"""

from __future__ import annotations

import asyncio
import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authtoken.models import Token

from synthesis.llm.base import LLMError
from synthesis.llm.registry import get_backend
from synthesis.llm.serving import BadRequest, list_models
from synthesis.llm.serving import chat_completions as handle


def _error(status: int, message: str, code: str) -> JsonResponse:
    return JsonResponse({"error": {"message": message, "type": code, "param": None, "code": code}}, status=status)


@sync_to_async
def _token_user(key: str):
    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else None


async def _authenticate(request, *, allow_session: bool):
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return await _token_user(header[len("Bearer "):].strip())
    if allow_session:
        user = await request.auser()
        return user if user.is_authenticated else None
    return None


def serving_backend():
    path = settings.INFTOOL_SERVE_MODEL_PATH or None
    return get_backend("embedded", model_path=path)


def served_model_name() -> str:
    return settings.INFTOOL_SERVE_MODEL_PATH.rstrip("/").rsplit("/", 1)[-1] if settings.INFTOOL_SERVE_MODEL_PATH else "smollm2-135m-instruct"


@csrf_exempt  # bearer tokens only for POST: there is no cookie for a forged form to ride on
async def chat_completions(request):

    if request.method != "POST":
        return _error(405, "use POST", "method_not_allowed")
    if await _authenticate(request, allow_session=False) is None:
        return _error(401, "send an API token as 'Authorization: Bearer <token>'", "invalid_api_key")
    try:
        body = json.loads(request.body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(400, f"the body is not valid JSON: {exc}", "invalid_json")
    except RecursionError:
        return _error(400, "the body is not valid JSON: it is nested too deeply", "invalid_json")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object", "invalid_request_error")
    requested = body.get("model")
    if requested not in (None, "", served_model_name()):
        return _error(404, f"model {requested!r} is not served here; available: {served_model_name()}", "model_not_found")
    body = {**body, "model": served_model_name()}
    try:
        backend = await asyncio.to_thread(serving_backend)
        response = await asyncio.to_thread(handle, body, backend)
    except BadRequest as exc:
        return JsonResponse(exc.to_dict(), status=exc.status)
    except LLMError as exc:
        return _error(503, f"the model backend failed: {exc}", "backend_error")
    return JsonResponse(response)


async def models(request):
    if await _authenticate(request, allow_session=True) is None:
        return _error(401, "log in or send an API token as 'Authorization: Bearer <token>'", "invalid_api_key")
    return JsonResponse(list_models([served_model_name()]))
