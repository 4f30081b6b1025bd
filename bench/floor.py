"""The floor: the least any function on this framework can do for the bench's webhooks.

It parses the JSON body and makes the same Stardex calls the real function makes for that body,
with one module-level ``requests.Session``, and nothing else: no signature check, no mapping, no
validation, no log line, no retries. For ``/typeform`` (and a ``/generic`` body carrying
``emails`` or ``phone_numbers``) that is a GET of the person then a PATCH; for any other body
naming the person, one PATCH. With ``STARDEX_API_KEY_SECRET`` set it reads that one secret on
first use through the real Secret Manager client (REST, anonymous credentials, the endpoint in
``SECRET_MANAGER_ENDPOINT``), as ours does. Served exactly as ``main.py`` is:
``functions-framework --source=bench/floor.py --target=handle_webhook``.
"""

import functools
import json
import os

import functions_framework
import requests
from flask import Response

BASE = os.environ["STARDEX_API_BASE"].rstrip("/")
SESSION = requests.Session()
SESSION.headers.update({"Content-Type": "application/json", "Accept": "application/json"})
TIMEOUT = (3.05, 10.0)


@functools.cache
def api_key() -> str:
    name = os.environ.get("STARDEX_API_KEY_SECRET")
    if not name:
        return os.environ["STARDEX_API_KEY"]
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager

    client = secretmanager.SecretManagerServiceClient(
        transport="rest", credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=os.environ["SECRET_MANAGER_ENDPOINT"]))
    return client.access_secret_version(name=name).payload.data.decode()


@functions_framework.http
def handle_webhook(request):
    document = json.loads(request.get_data())
    if "form_response" in document:  # Typeform: the person id is a hidden field
        person_id = document["form_response"]["hidden"]["stardex_person_id"]
        update = {}
        merge = True
    else:
        person_id = document["stardex_person_id"]
        update = {key: value for key, value in document.items() if key not in ("type", "stardex_person_id")}
        merge = "emails" in document or "phone_numbers" in document
    url = f"{BASE}/persons/{person_id}"
    headers = {"Authorization": f"Bearer {api_key()}"}
    if merge:
        person = SESSION.get(url, headers=headers, timeout=TIMEOUT).json()["data"]
        update["emails"] = person.get("emails", [])
    answer = SESSION.patch(url, data=json.dumps(update), headers=headers, timeout=TIMEOUT)
    answer.raise_for_status()
    body = json.dumps({"status": "updated", "person_id": person_id}, separators=(",", ":"))
    return Response(body, 200, mimetype="application/json")
