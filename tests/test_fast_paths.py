"""The fast paths added for speed (bench/README.md) must agree with the libraries they stand in for.

jsonschema stays off the cold start: valid mapping files and valid update bodies are passed by the
compiled fast check, and jsonschema is imported only to explain a document that fails it. The fast
check decides alone when a document is valid, so it must agree with jsonschema on every document;
these tests hold it to that for the mapping schema (the update schema's agreement is tested in
test_validation.py). Filters such as ``answers[?field.ref == 'email']`` are evaluated inline by the
JMESPath compiler; they must answer what jmespath answers.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from pathlib import Path

import jmespath
import pytest
from jsonschema import Draft202012Validator

from stardex_webhook.mapping import compile_expression
from stardex_webhook.validation import compile_fast_check

ROOT = Path(__file__).resolve().parent.parent
MAPPING_SCHEMA = json.loads((ROOT / "schemas" / "mapping.schema.json").read_text())
SHIPPED = [json.loads(path.read_text()) for path in sorted((ROOT / "mappings").glob("*.json"))]

REFERENCE = Draft202012Validator(MAPPING_SCHEMA)
FAST = compile_fast_check(MAPPING_SCHEMA, {})


def jsonschema_says_valid(document) -> bool:
    return not list(REFERENCE.iter_errors(document))


def test_the_mapping_schema_compiles_to_a_fast_check():
    assert FAST is not None


def test_shipped_mappings_pass_the_fast_check():
    for document in SHIPPED:
        assert FAST(document) and jsonschema_says_valid(document)


HANDWRITTEN = [
    {"events": "*", "fields": {"name": {"path": "name"}}},
    {"events": "x", "fields": {"name": {"path": "name"}}},
    {"events": [], "fields": {"name": {"path": "name"}}},
    {"events": ["a", "a"], "fields": {"name": {"path": "name"}}},
    {"events": ["a", ""], "fields": {"name": {"path": "name"}}},
    {"events": ["a", 1], "fields": {"name": {"path": "name"}}},
    {"events": [1, 1], "fields": {"name": {"path": "name"}}},
    {"events": [True, 1], "fields": {"name": {"path": "name"}}},
    {"events": ["a", "b"], "fields": {}},
    {"events": ["a"], "fields": {"name": {"value": "x"}}},
    {"events": ["a"], "fields": {"name": {"value": None}}},
    {"events": ["a"], "fields": {"name": {"path": "n", "value": "x"}}},
    {"events": ["a"], "fields": {"name": {"value": "x", "transforms": ["trim"]}}},
    {"events": ["a"], "fields": {"name": {"transforms": ["trim"]}}},
    {"events": ["a"], "fields": {"name": {}}},
    {"events": ["a"], "fields": {"name": {"path": "n", "transforms": ["nope"]}}},
    {"events": ["a"], "fields": {"name": {"path": "n", "transforms": "trim"}}},
    {"events": ["a"], "fields": {"name": {"path": ""}}},
    {"events": ["a"], "fields": {"name": {"path": "n", "extra": 1}}},
    {"events": ["a"], "fields": {"nickname": {"path": "n"}}},
    {"events": ["a"], "fields": {"emails": {"path": "e", "default_type": "work"}}},
    {"events": ["a"], "fields": {"emails": {"path": "e", "default_type": "mobile"}}},
    {"events": ["a"], "fields": {"emails": {"path": "e"}}},
    {"events": ["a"], "fields": {"emails": {"path": "e", "default_type": "work", "types": {"x": "home"}}}},
    {"events": ["a"], "fields": {"phone_numbers": {"path": "p", "default_type": "mobile", "types": {"x": "work"}}}},
    {"events": ["a"], "fields": {"phone_numbers": {"path": "p", "default_type": "mobile", "types": []}}},
    {"events": ["a"], "person": {"create": 1}, "fields": {"name": {"path": "n"}}},
    {"events": ["a"], "person": {"create": True, "id": "x"}, "fields": {"name": {"path": "n"}}},
    {"events": ["a"], "person": {"nickname": "x"}, "fields": {"name": {"path": "n"}}},
    {"events": ["a"], "root": "", "fields": {"name": {"path": "n"}}},
    {"events": ["a"], "root": 3, "fields": {"name": {"path": "n"}}},
    {"events": ["a"], "fields": {"name": {"path": "n"}}, "extra": True},
    {"events": ["a"], "fields": {"name": {"path": "n"}}, "description": 3},
    {"fields": {"name": {"path": "n"}}},
    {"events": "*"},
    [],
    "mapping",
    None,
]


@pytest.mark.parametrize("document", HANDWRITTEN, ids=range(len(HANDWRITTEN)))
def test_fast_check_agrees_with_jsonschema_on_handwritten_documents(document):
    assert FAST(document) == jsonschema_says_valid(document)


_ODD_VALUES = ["", "x", "*", "work", "trim", 0, 1, 1.5, True, False, None, [], ["x"], ["x", "x"], [1], {},
               {"path": "x"}, {"value": 1}, {"path": "x", "default_type": "work"}]


def _mutate(document, rng: random.Random):
    """The document with one random change at a random place: a key removed, a value replaced or
    a key added."""
    document = copy.deepcopy(document)
    holder, key = None, None
    node = document
    for _ in range(rng.randint(0, 4)):
        if isinstance(node, dict) and node:
            holder, key = node, rng.choice(sorted(node))
        elif isinstance(node, list) and node:
            holder, key = node, rng.randrange(len(node))
        else:
            break
        node = holder[key]
    action = rng.choice(("replace", "delete", "add"))
    if holder is None:
        return rng.choice(_ODD_VALUES) if action == "replace" else document
    if action == "delete" and isinstance(holder, dict):
        del holder[key]
    elif action == "add" and isinstance(node, dict):
        node[rng.choice(("path", "value", "transforms", "types", "default_type", "extra", "create"))] = copy.deepcopy(
            rng.choice(_ODD_VALUES))
    else:
        holder[key] = copy.deepcopy(rng.choice(_ODD_VALUES))
    return document


def test_fast_check_agrees_with_jsonschema_on_random_mutations():
    rng = random.Random(20260404)
    disagreements = []
    for _ in range(3000):
        document = _mutate(rng.choice(SHIPPED), rng)
        if rng.random() < 0.3:
            document = _mutate(document, rng)
        if FAST(document) != jsonschema_says_valid(document):
            disagreements.append(document)
    assert disagreements == []


def test_start_and_a_valid_webhook_do_not_import_jsonschema_and_an_invalid_body_does():
    probe = (
        "import sys\n"
        "from stardex_webhook.app import WebhookApp\n"
        "WebhookApp.from_environment({'STARDEX_API_KEY': 'k'})\n"
        "from stardex_webhook.validation import validate_update\n"
        "email = {'contact_data_type': 'work', 'value': 'm@example.org'}\n"
        "validate_update({'first_name': 'Marta', 'emails': [email]})\n"
        "print('jsonschema' in sys.modules)\n"
        "try:\n"
        "    validate_update({'first_name': ''})\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, 'jsonschema' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:2] == ["False", "Unprocessable True"]


def test_a_broken_mapping_file_still_stops_the_start_with_jsonschema_s_message(tmp_path):
    from stardex_webhook.errors import ConfigurationError
    from stardex_webhook.mapping import load_mappings

    (tmp_path / "x.json").write_text(json.dumps({"events": [], "fields": {"name": {"path": "n", "value": 1}}}))
    with pytest.raises(ConfigurationError) as caught:
        load_mappings(str(tmp_path), None, None)
    message = str(caught.value)
    assert "does not match the mapping schema" in message
    assert "$.events: must be \"*\" or a non-empty list" in message
    assert "$.fields.name: must have either `path`" in message


FILTERS = [
    "a[?b.c == 'x'].d", "a[?b.c != 'x'].d", "a[?b.c.e == 'x']", "a[?b == 'x' && c == 'y'].n",
    "a[?b == 'x' || b.c == 'y' || c == 'z']", "a[?b == '']", "a[?b == 'x'] | [0]", "a[?(b == 'x') || !c].n",
    "a[?b == `\"x\"`]", "a[?b == 'x' && !c]", "*[?b == 'x']", "a[?b == 'x' || b == 'y']",
    "a[?b.c == 'x' || b.c == 'y' || b.c == 'z'].d", "a[?b == 'x' || b == `1`]", "a[?b == 'x' || c == 'x'].n",
    "a[?b == 'y'].[b, c][]",
]
FILTER_DOCUMENTS = [
    None, "x", [], {}, {"a": None}, {"a": "x"}, {"a": {"b": "x"}},
    {"a": [{"b": {"c": "x"}, "d": 1}, {"b": {"c": "y"}, "d": 2}, {"b": "x", "c": "y", "n": 3}, {"b": {"c": 1}},
           {"b": {"c": {"e": "x"}}}, {"b": ""}, {"b": None, "c": "z"}, {"b": ["x"]}, "x", 1, None, [], {}]},
    {"a": [{"b": {"c": "x"}, "d": None}, {"b": "x", "c": False, "n": 0}, {"b": "x", "c": 0}]},
    {"a": [{"b": "y", "c": "x", "n": 1}, {"b": 1}, {"b": True}, {"b": "x", "c": "x"}, {"b": {"c": "z"}, "d": [1]}]},
    {"k": {"b": "x"}, "l": {"b": "y"}},
]


@pytest.mark.parametrize("expression", FILTERS)
def test_inline_filters_answer_what_jmespath_answers(expression):
    compiled = compile_expression(jmespath.compile(expression).parsed)
    for document in FILTER_DOCUMENTS:
        assert compiled(copy.deepcopy(document)) == jmespath.search(expression, copy.deepcopy(document)), document

