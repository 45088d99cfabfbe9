"""The floor: the least a Django view can do to take a complaint (parse the body, insert one row,
answer JSON), served by the same server as the two systems, to show what is left for them."""

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from floor.models import Row


@csrf_exempt
def create(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body) if request.content_type == "application/json" else request.POST
    row = Row.objects.create(email=data.get("email", ""), body=data.get("description", ""))
    return JsonResponse({"id": row.pk}, status=201)


urlpatterns = [path("floor", create)]
