"""infra/tools/schema_check.py: infra/ and its example against the google and archive providers' schemas.

The schemas are the providers' own, from the PyPI packages of their CDKTF bindings; the check
downloads each once into .ci/.tools/ (``bash .ci/infra-checks`` does so first in CI).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import hcl2
import pytest

from tests.helpers.infra import INFRA, tool

schema_check = tool("schema_check")


class ParsedOnce:
    """python-hcl2 as the check calls it (``hcl2.load``), each distinct text parsed once in this
    module: a check parses every file of the module and of its example (variables twice), and each
    test below checks a copy with one file changed, so parsing was nearly all of this module's time.
    The same text gives the same tree, which is handed out as a fresh copy each time."""

    def __init__(self) -> None:
        self.trees: dict[str, dict] = {}

    def load(self, handle) -> dict:
        with handle:
            text = handle.read()
        if text not in self.trees:
            self.trees[text] = hcl2.loads(text)
        return copy.deepcopy(self.trees[text])


schema_check.hcl2 = ParsedOnce()  # this module's own instance of the tool (tool() loads a fresh one)


@pytest.fixture(scope="module")
def google() -> dict:
    return schema_check.load_schema("google")


def test_the_module_and_its_example_match_the_provider_schemas(google):
    assert google["version"] == "6.50.0" and "google_cloudfunctions2_function" in google["resource"]
    assert schema_check.check(INFRA) == []


def infra_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform", ".build", "tools"))
    text = (copy / file).read_text()
    assert text.count(old) >= 1, f"{old!r} is not in {file}"
    (copy / file).write_text(text.replace(old, new, 1))
    return copy


@pytest.mark.parametrize(
    ("file", "old", "new", "reported"),
    [
        ("main.tf", "entry_point ", "entry_piont ", "unknown argument or block 'entry_piont' (did you mean 'entry_point'?)"),
        ("main.tf", 'resource "google_storage_bucket" ', 'resource "google_storage_buckets" ', "unknown resource type 'google_storage_buckets'"),
        ("main.tf", "  location                    = var.region\n", "", "google_storage_bucket.source: missing required argument 'location'"),
        ("main.tf", "max_instance_count               = var.max_instances", 'max_instance_count = "many"', "max_instance_count expects number, got string"),
        ("main.tf", "    timeout_seconds                  = var.timeout_seconds", "    timeout_seconds = var.sources", "timeout_seconds expects number, got list '${var.sources}'"),
        ("main.tf", "versioning {", "versioning = {", "versioning is a block"),
        ("main.tf", "    dynamic \"replicas\" {", "    dynamic \"replica\" {", "unknown block 'replica'"),
        ("main.tf", '  type        = "zip"', '  kind        = "zip"', "data.archive_file.source: unknown argument or block 'kind'"),
        ("versions.tf", ">= 6.50.0, < 7.0.0", ">= 6.0.0, < 7.0.0", "provider google constraint must be '>= 6.50.0, < 7.0.0'"),
        ("examples/basic/main.tf", "  region                   = var.region", "  regoin = var.region", "module.stardex_webhook: unknown argument or block 'regoin'"),
        ("examples/basic/main.tf", "  project_id               = var.project_id", "", "module.stardex_webhook: missing required argument 'project_id'"),
        ("examples/basic/main.tf", "  dry_run                  = var.dry_run", "  dry_run = var.labels", "module.stardex_webhook: dry_run expects bool, got map"),
    ],
    ids=["misspelt-argument", "unknown-type", "missing-required", "wrong-type", "wrong-variable-type", "block-as-argument", "dynamic-block", "archive-provider", "constraint", "module-input", "module-required", "module-input-type"],
)
def test_a_mistake_in_a_copy_of_infra_fails_the_check(tmp_path, capsys, file, old, new, reported):
    assert schema_check.main([str(infra_copy(tmp_path, file, old, new))]) == 1
    assert reported in capsys.readouterr().err


def test_every_resource_that_takes_labels_gets_the_module_s_labels(google):
    resources = hcl2.load((INFRA / "main.tf").open())["resource"]
    labelled = []
    for block in resources:
        for kind, instances in block.items():
            args = google["resource"][kind.strip('"')]["args"]
            for name, body in instances.items():
                for field in {"labels", "user_labels"} & set(args):
                    assert body.get(field) == "${local.labels}", f"{kind}.{name} does not set {field}"
                    labelled.append(kind)
    assert len(labelled) >= 5
