"""The floor: the least any function on this framework can do for the bench's webhooks.

It parses the JSON body and makes the same Stardex calls the real function makes for that body,
with one module-level ``requests.Session``, and nothing else: no signature check, no mapping, no
validation, no log line, no retries. For ``/typeform`` (and a ``/generic`` body carrying
``emails`` or ``phone_numbers``) that is a GET of the person then a PATCH; for any other body
naming the person, one PATCH. Served exactly as ``main.py`` is:
``functions-framework --source=bench/floor.py --target=handle_webhook``.
"""

import json
import os

import functions_framework
import requests
from flask import Response

BASE = os.environ["STARDEX_API_BASE"].rstrip("/")
SESSION = requests.Session()
SESSION.headers.update({
    "Authorization": f"Bearer {os.environ['STARDEX_API_KEY']}",
    "Content-Type": "application/json",
    "Accept": "application/json",
})
TIMEOUT = (3.05, 10.0)
if os.environ.get("BENCH_FLOOR_SETTLED_SESSION") == "1":
    # `bench/run.py --floor-settled-session`: the floor reads requests' environment settings once,
    # as our client does (stardex.settled_session), instead of on every call.
    _settings = SESSION.merge_environment_settings(BASE, {}, None, None, None)
    SESSION.proxies.update(_settings["proxies"])
    SESSION.verify = _settings["verify"]
    SESSION.auth = requests.utils.get_netrc_auth(BASE)
    SESSION.trust_env = False


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
    if merge:
        person = SESSION.get(url, timeout=TIMEOUT).json()["data"]
        update["emails"] = person.get("emails", [])
    answer = SESSION.patch(url, data=json.dumps(update), timeout=TIMEOUT)
    answer.raise_for_status()
    body = json.dumps({"status": "updated", "person_id": person_id}, separators=(",", ":"))
    return Response(body, 200, mimetype="application/json")
