"""JSON of random shapes, leaning towards the keys the mappings read (the in-process fuzz tests)."""


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
