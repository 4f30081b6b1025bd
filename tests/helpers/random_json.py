"""JSON of random shapes, leaning towards the keys the mappings read, and the places of a document
to put odd values in (the in-process fuzz tests)."""

import copy


def random_json(rng, depth=0):
    """A random JSON value that leans towards the keys our mappings read, so paths hit odd shapes."""
    keys = ["action", "payload", "application", "candidate", "first_name", "email_addresses", "value", "type",
            "form_response", "answers", "field", "ref", "hidden", "stardex_person_id", "emails", "phone_numbers",
            "linkedin_url", "data", "email", "name", "custom_fields", "text", "url", "event_type"]
    choice = rng.random()
    if depth > 4 or choice < 0.3:
        return rng.choice([None, True, False, 0, -1, 1.5, 10**20, float("nan"), float("-inf"), "", " ", "x", "a@b.co",
                           "+1 415 555 0123", "https://www.linkedin.com/in/x", "hire_candidate", "form_response", "ping"])
    if choice < 0.6:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def places(document, path=()):
    """Every place in a JSON document, at any depth: each object member's value and each list item,
    as the keys that lead to it."""
    items = document.items() if isinstance(document, dict) else enumerate(document) if isinstance(document, list) else ()
    for key, value in items:
        yield (*path, key)
        yield from places(value, (*path, key))


def with_value(document, path, value):
    """A copy of ``document`` with ``value`` at ``path`` (one of ``places``)."""
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed
