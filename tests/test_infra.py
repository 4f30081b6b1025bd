"""The Terraform module (infra/) cross-checked against the code it deploys.

No Terraform binary or provider can run here, so two readers stand in: python-hcl2 parses every
``.tf`` file as written, and tfparse evaluates the module (variables, locals, ``for_each``) the way
``terraform plan`` would, minus the provider. Resource attributes that only Google knows after
apply (a secret's ``id``) come out of tfparse as opaque tokens that are still equal wherever the
same resource is referenced, which is what the secret-to-reader checks compare.
"""

from __future__ import annotations

import ast
import io
import json
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import hcl2
import pytest
import tfparse

from stardex_webhook import send_sample
from stardex_webhook.config import STARDEX_API_KEY, api_key_name, load_settings, signing_key_name
from stardex_webhook.events import HISTORY_KEY, EventHistory
from stardex_webhook.logs import JsonLog
from stardex_webhook.pipeline import answered
from stardex_webhook.secrets import SecretProvider, check_version_name
from stardex_webhook.sources import SOURCES
from stardex_webhook.sources.__main__ import terraform_locals
from tests.fakes.memory_bucket import MemoryBucket, MemoryStore
from tests.helpers.infra import INFRA, REPO, tool

EXAMPLE = INFRA / "examples" / "basic"
EXAMPLE_TFVARS = EXAMPLE / "terraform.tfvars.example"
CONFIGURATION_PAGE = "docs/configuration.md"  # the settings table: every non-secret setting with its default
TF_FILES = sorted(p for p in INFRA.rglob("*.tf") if ".terraform" not in p.parts)
# The module alone with its defaults; the example root module with the values a user copies; the
# module with an account of the user's own (tfparse reads var files relative to the folder).
CASES = {
    "defaults": (INFRA, None),
    "example": (EXAMPLE, EXAMPLE_TFVARS.name),
    "existing-account": (INFRA, "../tests/fixtures/infra_existing_account.tfvars"),
    "queued": (INFRA, "../tests/fixtures/infra_queued.tfvars"),
    # Queued, with a folder of the user's own mappings (mappings_dir).
    "custom-mappings": (INFRA, "../tests/fixtures/infra_custom_mappings.tfvars"),
}
SECRET_SUFFIX = "_SECRET"
# Set by the platform itself, never by infra/ or a user: Cloud Run's name of the service (the
# function), which the app puts back into the URL a sender signed (HubSpot).
PLATFORM_SETTINGS = {"K_SERVICE"}


docs = tool("docs")

# ---- readers ---------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def parsed(path: Path) -> dict:
    with path.open() as handle:
        return hcl2.load(handle)


def literal(value):
    """python-hcl2 keeps a string literal's quotes; drop them so it reads as the value."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def blocks(path: Path, kind: str) -> dict[str, dict]:
    """``variable "x" {...}`` blocks of one file by name."""
    found = {}
    for block in parsed(path).get(kind, []):
        for name, body in block.items():
            found[literal(name)] = body
    return found


@lru_cache(maxsize=None)
def evaluated(case: str = "defaults") -> dict:
    folder, var_file = CASES[case]
    return tfparse.load_from_path(str(folder), vars_paths=[var_file] if var_file else [])


def locals_of(model: dict) -> dict:
    merged = {}
    for block in model["locals"]:
        merged.update({k: v for k, v in block.items() if k not in ("__tfmeta", "id")})
    return merged


def the_function(model: dict, entry_point: str = "handle_webhook") -> dict:
    """The public function (or, with ``entry_point="handle_task"``, the queued worker)."""
    (function,) = [f for f in model["google_cloudfunctions2_function"] if f["build_config"]["entry_point"] == entry_point]
    return function


def environment(model: dict) -> dict[str, str]:
    return the_function(model)["service_config"]["environment_variables"]


def _module_blocks(model: dict, kind: str) -> dict[str, dict]:
    """The module's own variables or outputs by name (through the example, its root has some too)."""
    nested = [b for b in model[kind] if b["__tfmeta"]["path"].startswith("module.stardex_webhook.")]
    return {b["__tfmeta"]["label"]: b for b in (nested or model[kind])}


def variable_default(name: str, model: dict):
    return _module_blocks(model, "variable")[name].get("default")


def runtime_member(model: dict) -> str:
    """The IAM member of the account the function runs as, however the module names it."""
    email = the_function(model)["service_config"]["service_account_email"]
    return f"serviceAccount:{email if isinstance(email, str) else '${' + email['__attribute__'] + '}'}"


def by_case(func):
    return pytest.mark.parametrize("case", list(CASES))(func)


# ---- what the code reads -----------------------------------------------------------------------

_ENV_READ = re.compile(r"""(?:\benv(?:iron)?\.get|_flag|_number)\(\s*(?:env,\s*)?["']([A-Z][A-Z0-9_]+)["']""")


def settings_read_by_code() -> set[str]:
    """Every variable the deployed code reads by a fixed name (config.py and friends): the archive's
    modules, not the local tools beside them."""
    names = set()
    for path in archived_files():
        if path.endswith(".py"):
            names.update(_ENV_READ.findall((REPO / path).read_text()))
    return names


def secret_settings(sources: list[str], state_bucket: bool = True) -> set[str]:
    """Settings read through the secret provider, for the given enabled sources (a sender whose
    webhooks need follow-up reads has its API key too); with the state bucket, the event history's key."""
    return ({STARDEX_API_KEY} | {signing_key_name(s) for s in sources}
            | {api_key_name(s) for s in sources if SOURCES[s].needs_api_key} | ({HISTORY_KEY} if state_bucket else set()))


def documented_settings() -> set[str]:
    """Non-secret variables of docs/configuration.md's table: each has a default there."""
    table = (REPO / CONFIGURATION_PAGE).read_text()
    names = set()
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            found = re.findall(r"`([A-Z_<>]+)`", cells[0])
            if not any(n.endswith(SECRET_SUFFIX) for n in found):  # a secret has no default
                names.update(found)
    assert {"STARDEX_API_BASE", "DRY_RUN"} <= names, f"{CONFIGURATION_PAGE}'s table was not found or not read"
    return names


# ---- the files themselves ----------------------------------------------------------------------


@pytest.mark.parametrize("folder", [INFRA, EXAMPLE], ids=["module", "example"])
def test_module_and_example_have_the_standard_layout(folder):
    for name in ("versions.tf", "variables.tf", "main.tf", "outputs.tf", "README.md"):
        assert (folder / name).is_file(), name
    assert EXAMPLE_TFVARS.is_file()


@pytest.mark.parametrize("path", TF_FILES, ids=[str(p.relative_to(INFRA)) for p in TF_FILES])
def test_every_tf_file_parses(path):
    assert parsed(path), f"{path} is empty"


@pytest.mark.parametrize("folder", [INFRA, EXAMPLE], ids=["module", "example"])
def test_the_terraform_version_is_pinned_to_a_range(folder):
    # Provider constraints are the schema check's: they must start at the version it checks.
    (terraform,) = parsed(folder / "versions.tf")["terraform"]
    assert re.fullmatch(r">= 1\.9\.\d+, < 2\.0\.0", literal(terraform["required_version"]))


def test_every_variable_is_typed_and_described():
    for name, body in blocks(INFRA / "variables.tf", "variable").items():
        assert body.get("type"), f"variable {name} has no type"
        assert len(literal(body.get("description", ""))) > 10, f"variable {name} has no description"


@pytest.mark.parametrize(
    "name",
    ["project_id", "region", "sources", "memory", "timeout_seconds", "min_instances", "max_instances", "concurrency", "log_level",
     "mappings_dir"],
)
def test_variables_where_a_wrong_value_is_likely_are_validated(name):
    assert blocks(INFRA / "variables.tf", "variable")[name].get("validation"), name


def test_every_output_is_described():
    for name, body in blocks(INFRA / "outputs.tf", "output").items():
        assert len(literal(body.get("description", ""))) > 10, f"output {name} has no description"


# ---- the function against the code -----------------------------------------------------------


@by_case
def test_entry_point_and_runtime_match_main_py(case):
    build = the_function(evaluated(case))["build_config"]
    assert build["runtime"] == "python312"
    tree = ast.parse((REPO / "main.py").read_text())
    http_functions = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d) == "functions_framework.http" for d in node.decorator_list)
    }
    assert build["entry_point"] in http_functions


def test_known_sources_are_generated_from_the_code_s_sources():
    assert (INFRA / "sources.tf").read_text() == terraform_locals(), "run: python -m stardex_webhook.sources > infra/sources.tf"
    known = locals_of(evaluated())["known_sources"]
    assert known == {name: {"api_key": source.needs_api_key} for name, source in SOURCES.items()}


@by_case
def test_enabled_sources_are_sources_the_code_knows(case):
    enabled = locals_of(evaluated(case))["sources"]
    assert enabled and set(enabled) <= set(SOURCES)


def test_no_sources_means_every_sender_the_code_knows():
    assert variable_default("sources", evaluated()) is None
    assert sorted(locals_of(evaluated())["sources"]) == sorted(SOURCES)


def test_the_settings_scan_finds_what_config_reads():
    # Guards the scan below: if it found nothing, every env-var check would pass vacuously.
    assert {"DRY_RUN", "MAX_BODY_BYTES", "STARDEX_API_BASE", "LOG_LEVEL"} <= settings_read_by_code()


@by_case
def test_every_setting_the_code_reads_is_set_or_has_a_documented_default(case):
    model = evaluated(case)
    env = environment(model)
    defaults = documented_settings()
    enabled = locals_of(model)["sources"]
    missing = sorted(
        name
        for name in settings_read_by_code() | secret_settings(enabled)
        if name not in env and f"{name}{SECRET_SUFFIX}" not in env and name not in defaults
        and name not in PLATFORM_SETTINGS
    )
    assert not missing, f"read by the code, not set by infra/ and without a default in {CONFIGURATION_PAGE}: {missing}"


@by_case
def test_every_enabled_source_and_the_stardex_key_come_from_secret_manager(case):
    model = evaluated(case)
    env = environment(model)
    for name in secret_settings(locals_of(model)["sources"]):
        assert f"{name}{SECRET_SUFFIX}" in env, name
        assert name not in env, f"{name} would carry the value itself in the function's settings"


@by_case
def test_every_secret_setting_names_a_secret_the_runtime_account_can_read(case):
    model = evaluated(case)
    secrets = {s["id"]: s for s in model["google_secret_manager_secret"]}
    readable = {
        m["secret_id"]
        for m in model["google_secret_manager_secret_iam_member"]
        if m["role"] == "roles/secretmanager.secretAccessor"
        and m["member"] == runtime_member(model)
    }
    secret_env = {k: v for k, v in environment(model).items() if k.endswith(SECRET_SUFFIX)}
    assert secret_env
    for name, value in secret_env.items():
        secret_ref, _, version = value.partition("/versions/")
        assert secret_ref in secrets, f"{name} does not point at a secret this module creates"
        assert secret_ref in readable, f"the runtime account cannot read the secret behind {name}"
        # The provider's id is projects/P/secrets/S: the value must be a name the code accepts.
        real = f"projects/{variable_default('project_id', model) or 'p'}/secrets/{secrets[secret_ref]['secret_id']}"
        assert check_version_name(name, f"{real}/versions/{version}")


@by_case
def test_the_runtime_account_is_granted_its_secrets_its_state_and_its_queue_and_nothing_else(case):
    model = evaluated(case)
    member = runtime_member(model)
    grants = [
        (kind, block.get("role"))
        for kind, resources in model.items()
        if kind.endswith(("_iam_member", "_iam_binding", "_iam_policy"))
        for block in resources
        if member in json.dumps(block)
    ]
    secret_count = len(model["google_secret_manager_secret"])
    expected = [("google_secret_manager_secret_iam_member", "roles/secretmanager.secretAccessor")] * secret_count
    expected.append(("google_storage_bucket_iam_member", "roles/storage.objectUser"))  # claims and dead letters
    if model["google_cloud_tasks_queue"] if "google_cloud_tasks_queue" in model else False:  # queued: enqueue to
        # its queue, and name the tasks account on a task (OIDC)
        expected += [("google_cloud_tasks_queue_iam_member", "roles/cloudtasks.enqueuer"),
                     ("google_service_account_iam_member", "roles/iam.serviceAccountUser")]
    assert sorted(grants) == sorted(expected)
    (state,) = [b for b in model["google_storage_bucket_iam_member"] if b["member"] == member]
    # tfparse gives the name, or (when the project is a variable without a default) the reference.
    assert state["bucket"] in (state_bucket(model)["name"], {"__attribute__": "google_storage_bucket.state.[0].name", "__name__": "state"})


@by_case
def test_one_secret_per_setting_and_no_more(case):
    model = evaluated(case)
    expected = secret_settings(locals_of(model)["sources"])
    assert set(locals_of(model)["secrets"]) == expected
    assert len(model["google_secret_manager_secret"]) == len(expected)


@by_case
def test_function_serves_concurrently_with_bounded_instances(case):
    model = evaluated(case)
    service = the_function(model)["service_config"]
    assert service["max_instance_request_concurrency"] > 1
    assert 1 <= service["max_instance_count"] <= 20
    # Timeout and memory come from the variables, and gunicorn's threads match the concurrency.
    assert service["timeout_seconds"] == variable_default("timeout_seconds", model)
    assert service["available_memory"] == variable_default("memory", model)
    assert int(environment(model)["THREADS"]) == service["max_instance_request_concurrency"]
    assert float(environment(model)["STARDEX_DEADLINE_SECONDS"]) < service["timeout_seconds"]


@by_case
def test_each_instance_paces_itself_at_its_exact_share_of_stardex_s_rate(case):
    model = evaluated(case)
    instances = the_function(model)["service_config"]["max_instance_count"]
    assert int(environment(model)["STARDEX_REQUESTS_PER_MINUTE"]) == 60 // instances


def test_one_instance_by_default_has_the_whole_rate():
    assert variable_default("max_instances", evaluated()) == 1
    assert environment(evaluated())["STARDEX_REQUESTS_PER_MINUTE"] == "60"


def test_the_build_account_may_read_the_source_push_to_its_registry_and_write_logs_only():
    model = evaluated("example")
    build = "serviceAccount:${google_service_account.build.email}"
    def target(block):
        value = block.get("bucket") or block.get("repository") or block.get("project")
        return value if isinstance(value, str) else value["__attribute__"]

    grants = sorted(
        (kind, block["role"], target(block))
        for kind, resources in model.items()
        if kind.endswith(("_iam_member", "_iam_binding", "_iam_policy"))
        for block in resources
        if block.get("member") == build
    )
    (bucket,) = [b for b in model["google_storage_bucket"] if re.search(r"(^|\.)google_storage_bucket\.source$", b["__tfmeta"]["path"])]
    (registry,) = model["google_artifact_registry_repository"]
    assert grants == [
        ("google_artifact_registry_repository_iam_member", "roles/artifactregistry.writer", "google_artifact_registry_repository.images.name"),
        ("google_project_iam_member", "roles/logging.logWriter", "my-search-firm-prod"),
        ("google_storage_bucket_iam_member", "roles/storage.objectViewer", bucket["name"]),
    ]
    assert the_function(model)["build_config"]["docker_repository"] == registry["id"]


def test_an_existing_runtime_account_is_used_instead_of_a_new_one():
    model = evaluated("existing-account")
    (only,) = model["google_service_account"]
    assert only["account_id"].endswith("-build")
    assert the_function(model)["service_config"]["service_account_email"] == "webhooks@my-search-firm-prod.iam.gserviceaccount.com"


def test_the_uptime_check_calls_healthz_and_alerts_the_channels_named():
    model = evaluated("example")
    (check,) = model["google_monitoring_uptime_check_config"]
    assert check["http_check"]["path"] == "${local.function_path}/healthz" and check["http_check"]["use_ssl"] is True
    (policy,) = [p for p in model["google_monitoring_alert_policy"] if p["display_name"].endswith(" is down")]
    assert policy["notification_channels"] == [] and variable_default("notification_channels", evaluated()) == []
    condition = policy["conditions"]["condition_threshold"]
    assert "monitoring.googleapis.com/uptime_check/check_passed" in condition["filter"]
    assert "google_monitoring_uptime_check_config.healthz[0].uptime_check_id" in condition["filter"]


def test_anyone_may_invoke_the_function_and_the_signature_is_the_guard():
    model = evaluated("example")
    (invoker,) = model["google_cloud_run_v2_service_iam_member"]
    assert invoker["name"]["__attribute__"].startswith("google_cloudfunctions2_function.webhook.")
    assert invoker["role"] == "roles/run.invoker" and invoker["member"] == "allUsers"
    assert the_function(model)["service_config"]["ingress_settings"] == "ALLOW_ALL"
    assert environment(model)["ALLOW_UNSIGNED"] == "0"


# ---- the source archive ------------------------------------------------------------------------


def archived_files() -> list[str]:
    return locals_of(evaluated())["source_files"]


# The package's local tools: the commands a person runs, the sandbox Stardex and the samples. They
# live in the package (``python -m stardex_webhook.plan``) but are never deployed.
TOOL_MODULES = {"serve", "send_sample", "plan", "replay", "history", "custom_fields_check", "__main__"}


def is_tool_fake_or_sample(path: str) -> bool:
    name = Path(path).name
    return (Path(path).stem in TOOL_MODULES or "fake" in name or "sample" in path.lower()
            or path.startswith("stardex_webhook/samples/"))


def modules_main_imports() -> set[str]:
    """The package's modules that ``import main`` loads (what the function runs), repo-relative."""
    listed = subprocess.run(
        [sys.executable, "-c",
         "import main, sys\n"
         "for name, module in sorted(sys.modules.items()):\n"
         "    if name.split('.')[0] == 'stardex_webhook' and getattr(module, '__file__', None):\n"
         "        print(module.__file__)"],
        cwd=REPO, env={"PATH": "/usr/bin:/bin", "DRY_RUN": "1"}, capture_output=True, text=True, timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    return {str(Path(line).resolve().relative_to(REPO)) for line in listed.stdout.split()}


def test_archive_holds_no_tool_fake_or_sample():
    files = archived_files()
    tools = [str(p.relative_to(REPO)) for p in (REPO / "stardex_webhook").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and is_tool_fake_or_sample(str(p.relative_to(REPO)))]
    # Not vacuous: the tools are there to leave out (the sandbox Stardex, plan, the samples...).
    assert {"stardex_webhook/fake_stardex.py", "stardex_webhook/plan.py", "stardex_webhook/send_sample.py",
            "stardex_webhook/samples/greenhouse.json"} <= set(tools)
    assert [path for path in files if is_tool_fake_or_sample(path)] == []


def test_archive_is_exactly_what_main_imports_and_the_data_it_loads():
    expected = {"main.py", "requirements.txt"} | modules_main_imports() | {
        str(p.relative_to(REPO)) for folder in ("schemas", "mappings") for p in (REPO / folder).glob("*.json")}
    assert "stardex_webhook/sources/greenhouse.py" in expected  # the senders, through sources/__init__.py
    files = archived_files()
    assert len(files) == len(set(files))
    assert set(files) == expected


def test_archive_leaves_out_tests_infra_and_vcs_files():
    for path in archived_files():
        top = path.split("/", 1)[0]
        assert top not in {"tests", "infra", "bench", ".ci", ".git", ".venv"}, path
        assert "__pycache__" not in path and not path.endswith(".pyc"), path


def tracked_files() -> set[str]:
    """What a clone holds: the files git tracks, and new ones not yet committed (not the ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode().split("\0")
    return {path for path in listed if path and (REPO / path).is_file()}


def test_the_infra_tests_read_only_files_a_clone_holds():
    """A user's clone has nothing beside it: these tests, and the module they evaluate, read files of
    the repository only (no sibling folder, nothing ignored or generated)."""
    tracked = tracked_files()
    # Every relative path in this module (the var files tfparse reads from infra/) stays in the clone.
    constants = [node.value for node in ast.walk(ast.parse(Path(__file__).read_text()))
                 if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    for text in constants:
        for path in re.findall(r"(?:\.\./)+[\w./-]+", text):
            for base in (INFRA, EXAMPLE):
                assert (base / path).resolve().is_relative_to(REPO), path
    for folder, var_file in CASES.values():
        assert folder.resolve().is_relative_to(REPO)
        if var_file:
            assert str((folder / var_file).resolve().relative_to(REPO)) in tracked, var_file
    # The module reads the code from the clone it is in, and the example calls the module in it.
    assert (INFRA / locals_of(evaluated())["repo_root"]).resolve() == REPO
    (call,) = [body for block in parsed(EXAMPLE / "main.tf")["module"] for name, body in block.items()
               if literal(name) == "stardex_webhook"]
    assert (EXAMPLE / literal(call["source"])).resolve() == INFRA
    # What the archive, the parsers and the readers take are files of the clone.
    read = {*archived_files(), "README.md", CONFIGURATION_PAGE, "main.py", "infra/README.md", "infra/tools/docs.py",
            *(str(p.relative_to(REPO)) for p in TF_FILES), str(EXAMPLE_TFVARS.relative_to(REPO))}
    assert read <= tracked, sorted(read - tracked)


def test_archive_alone_is_enough_to_start_the_function(tmp_path):
    for path in archived_files():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / path, tmp_path / path)
    started = subprocess.run(
        [sys.executable, "-c", "import main; print(main.handle_webhook.__name__)"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "handle_webhook"


def archive_contents(case: str) -> dict[str, str]:
    """What the archive Terraform builds holds: path => text."""
    (archive,) = evaluated(case)["archive_file"]
    return {source["filename"]: source["content"] for source in archive["source"]}


def greenhouse_events_acted_on(case: str, tmp_path: Path) -> list[bool]:
    """Start the function from the archive alone, with the environment Terraform gives it, and ask
    its Greenhouse mapping which of two events it acts on."""
    for path, text in archive_contents(case).items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    environment = the_function(evaluated(case))["service_config"]["environment_variables"]
    started = subprocess.run(
        [sys.executable, "-c",
         "import os, main\n"
         "from stardex_webhook.config import load_settings\n"
         "from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings\n"
         "from stardex_webhook.sources import SOURCES\n"
         "greenhouse = load_mappings(BUILTIN_MAPPINGS_DIR, load_settings(os.environ).mappings_dir, None, SOURCES)['greenhouse']\n"
         "print(greenhouse.acts_on('hire_candidate'), greenhouse.acts_on('candidate_stage_change'))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "DRY_RUN": "1",
             **{name: environment[name] for name in ("MAPPINGS_DIR",) if name in environment}},
    )
    assert started.returncode == 0, started.stderr
    return [word == "True" for word in started.stdout.split()]


def test_mappings_dir_deploys_the_users_mapping_files_to_the_function_and_the_worker(tmp_path):
    """A user's own mapping (README: "change a mapping without touching code") reaches production:
    the files go into the archive and both functions are pointed at them; the built-ins stay."""
    model = evaluated("custom-mappings")
    own = REPO / "tests" / "fixtures" / "infra_mappings" / "greenhouse.json"
    files = archive_contents("custom-mappings")
    assert files["custom_mappings/greenhouse.json"] == own.read_text()
    assert set(files) - {"custom_mappings/greenhouse.json"} == set(archived_files())
    for entry_point in ("handle_webhook", "handle_task"):
        environment = the_function(model, entry_point)["service_config"]["environment_variables"]
        assert environment["MAPPINGS_DIR"] == "custom_mappings", entry_point
    assert greenhouse_events_acted_on("custom-mappings", tmp_path / "own") == [True, False]  # the user's: hires only
    assert greenhouse_events_acted_on("defaults", tmp_path / "built-in") == [True, True]
    assert "MAPPINGS_DIR" not in the_function(evaluated())["service_config"]["environment_variables"]


def test_archive_object_is_named_by_the_content_hash():
    main_tf = blocks(INFRA / "main.tf", "resource")
    (obj,) = [body for name, body in main_tf.items() if name == "google_storage_bucket_object"]
    assert "local.source_hash" in obj['"source"']["name"]
    (local_block,) = parsed(INFRA / "main.tf")["locals"]
    assert "filesha256" in local_block["source_hash"] and "local.source_files" in local_block["source_hash"]
    assert "local.custom_mappings" in local_block["source_hash"], "a changed mapping of the user's redeploys"


# ---- secrets stay out of the files and the state -----------------------------------------------

_KEY_SHAPES = [
    re.compile(r"whsec_[A-Za-z0-9+/=]{8,}"),
    re.compile(r"\b[0-9a-f]{32,}\b"),
    re.compile(r"\b[A-Za-z0-9+/]{40,}={0,2}"),
    re.compile(r"\bsk_(live|test)_\w+"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]


def infra_text_files() -> list[Path]:
    return [p for p in INFRA.rglob("*") if p.is_file() and p.name.endswith((".tf", ".tfvars", ".tfvars.example")) and ".terraform" not in p.parts]


def test_no_key_or_secret_value_appears_in_any_tf_file():
    demo_keys = {send_sample.local_signing_key(source) for source in SOURCES}
    for path in infra_text_files():
        text = path.read_text()
        for shape in _KEY_SHAPES:
            assert not shape.search(text), f"{path}: {shape.pattern} looks like a key"
        for key in demo_keys:
            assert key not in text, f"{path} holds a demo signing key"


def test_secret_values_enter_only_through_the_sensitive_opt_in():
    variables = blocks(INFRA / "variables.tf", "variable")
    assert variables["secret_values"]["sensitive"] is True
    assert variables["secret_values"]["default"] == {}
    for path in TF_FILES:
        for resource in parsed(path).get("resource", []):
            for kind, instances in resource.items():
                for body in instances.values():
                    if "secret_data" in body:
                        assert kind == '"google_secret_manager_secret_version"'
                        assert body["secret_data"] == "${var.secret_values[each.value]}"
    example = hcl2.load(EXAMPLE_TFVARS.open())
    assert "secret_values" not in example


def test_without_the_opt_in_no_secret_version_is_created():
    assert "google_secret_manager_secret_version" not in evaluated("example")


# ---- outputs ------------------------------------------------------------------------------------


def outputs(model: dict) -> dict:
    return {name: o.get("value") for name, o in _module_blocks(model, "output").items()}


GCLOUD_STUB = """#!/usr/bin/env bash
# Records each call: its arguments on one line, then exactly what it read on stdin.
printf '%s\\n' "$*" >> "$GCLOUD_LOG"
cat >> "$GCLOUD_LOG"
printf '\\n--\\n' >> "$GCLOUD_LOG"
"""


def test_the_secret_commands_pasted_into_bash_store_each_value_exactly_as_typed(tmp_path):
    model = evaluated("example")
    script = outputs(model)["secret_commands"]  # what `terraform output -raw secret_commands` prints
    secret_ids = locals_of(model)["secrets"]
    prompts = re.findall(r"read -rsp '(\w+) ", script)
    assert sorted(prompts) == sorted(secret_ids)
    # A value with quotes, spaces and a $; one prompt answered with Enter, which skips that secret.
    typed = {name: f"""it's "{name.lower()}" $HOME \\n %s""" for name in prompts[1:]} | {prompts[0]: ""}
    (tmp_path / "gcloud").write_text(GCLOUD_STUB)
    (tmp_path / "gcloud").chmod(0o755)
    log = tmp_path / "calls.log"
    # Pasting into a terminal: bash reads the text as commands, then each prompt reads the next line.
    pasted = script + "".join(f"{typed[name]}\n" for name in prompts)
    run = subprocess.run(
        ["bash"],
        input=pasted,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin", "GCLOUD_LOG": str(log), "HOME": "/nowhere"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    calls = [c.split("\n", 1) for c in log.read_text().split("\n--\n") if c]
    expected = [
        [f"secrets versions add {secret_ids[name]} --project=my-search-firm-prod --data-file=-", typed[name]]
        for name in prompts
        if typed[name]
    ]
    assert calls == expected
    assert "$HOME" not in run.stdout + run.stderr and "nowhere" not in log.read_text()


def test_outputs_give_the_urls_and_the_account():
    values = outputs(evaluated("example"))
    assert {"url", "webhook_urls", "service_account_email", "secret_commands"} <= set(values)
    body = blocks(INFRA / "outputs.tf", "output")["webhook_urls"]["value"]
    assert "local.sources" in body and "/${s}" in body
    example = blocks(EXAMPLE / "outputs.tf", "output")
    assert {"url", "webhook_urls", "secret_commands"} <= set(example)


# ---- docs kept in step -------------------------------------------------------------------------


def test_readme_tables_are_what_the_docs_script_writes():
    for folder in docs.FOLDERS:
        current, wanted = docs.rendered(folder)
        assert current == wanted, f"{folder / 'README.md'} is out of date: run python infra/tools/docs.py"


def test_the_docs_tables_show_list_defaults_as_written():
    """A list of strings reads ["greenhouse", "typeform"], never with the quotes escaped again."""
    for folder in docs.FOLDERS:
        _current, wanted = docs.rendered(folder)
        assert '\\"' not in wanted, f"{folder / 'README.md'}: a default with its quotes escaped twice"
    assert '| `sources` | `list(string)` | `["greenhouse", "typeform"]` |' in docs.rendered(EXAMPLE)[1]


def test_the_example_passes_the_state_bucket_and_the_delivery_mode_through():
    """Replay needs the state bucket, and queued delivery is chosen in the example: both are its inputs."""
    (call,) = [body for block in parsed(EXAMPLE / "main.tf")["module"] for name, body in block.items()
               if literal(name) == "stardex_webhook"]
    for name in ("state_bucket", "delivery_mode"):
        assert literal(call[name]) == f"${{var.{name}}}", name
        assert name in blocks(EXAMPLE / "variables.tf", "variable")
        assert re.search(rf"^{name}\s*=", EXAMPLE_TFVARS.read_text(), re.M), name


def test_the_docs_script_notices_a_new_variable(tmp_path):
    module = tmp_path / "infra"
    shutil.copytree(INFRA, module, ignore=shutil.ignore_patterns("examples", "tools"))
    with (module / "variables.tf").open("a") as handle:
        handle.write('\nvariable "extra" {\n  description = "Added after the tables were written."\n  type        = string\n}\n')
    current, wanted = docs.rendered(module)
    assert current != wanted and "| `extra` | `string` | required | Added after the tables were written. |" in wanted


def test_main_readme_deploy_section_uses_the_module_s_real_names():
    readme = (REPO / "README.md").read_text()
    deploy = readme.split("## Deployment", 1)[1].split("\n## ", 1)[0]
    for needed in ("terraform init", "terraform apply", "secret_commands", "webhook_urls", "terraform destroy"):
        assert needed in deploy, needed
    for name in re.findall(r"terraform output -raw (\w+)|terraform output (\w+)", deploy):
        assert set(filter(None, name)) <= set(blocks(EXAMPLE / "outputs.tf", "output")), name


# ---- queued delivery and what is never lost ------------------------------------------------------


def state_bucket(model: dict) -> dict:
    (bucket,) = [b for b in model["google_storage_bucket"] if re.search(r"(^|\.)google_storage_bucket\.state(\[0\])?$", b["__tfmeta"]["path"])]
    return bucket


def _listed(value) -> list:
    """tfparse gives one nested block as a dict and several as a list."""
    return value if isinstance(value, list) else [value]


@by_case
def test_the_state_bucket_is_private_unversioned_and_expires_markers_and_dead_letters(case):
    model = evaluated(case)
    bucket = state_bucket(model)
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["versioning"]["enabled"] is False
    rules = {rule["condition"]["matches_prefix"][0]: rule for rule in _listed(bucket["lifecycle_rule"])}
    assert set(rules) == {"deliveries/", "dead-letters/", "events/", "payloads/"}
    assert rules["events/"]["condition"]["age"] == variable_default("history_retention_days", model) == 30
    assert rules["deliveries/"]["condition"]["age"] == variable_default("claim_retention_days", model)
    assert rules["dead-letters/"]["condition"]["age"] == variable_default("dead_letter_retention_days", model)
    assert rules["payloads/"]["condition"]["age"] == variable_default("dead_letter_retention_days", model)
    assert all(rule["action"]["type"] == "Delete" for rule in rules.values())
    assert "STATE_BUCKET" in environment(model)
    if isinstance(bucket["name"], str):  # tfparse resolves it once the project is known
        assert environment(model)["STATE_BUCKET"] == bucket["name"] == f"{variable_default('project_id', model) or 'my-search-firm-prod'}-stardex-webhook-state"


def test_sync_is_the_default_and_makes_no_queue_and_no_worker():
    model = evaluated()
    assert variable_default("delivery_mode", model) == "sync"
    assert environment(model)["DELIVERY"] == "sync"
    assert "google_cloud_tasks_queue" not in model
    assert len(model["google_cloudfunctions2_function"]) == 1
    assert not {"TASKS_QUEUE", "TASKS_WORKER_URL", "TASKS_SERVICE_ACCOUNT"} & set(environment(model))


def test_the_queue_keeps_under_stardex_s_rate_and_retries_for_at_least_a_day():
    model = evaluated("queued")
    (queue,) = model["google_cloud_tasks_queue"]
    assert 0 < queue["rate_limits"]["max_dispatches_per_second"] * 60 < 60
    assert queue["rate_limits"]["max_concurrent_dispatches"] == variable_default("worker_concurrency", model)
    retry = queue["retry_config"]
    assert int(retry["max_retry_duration"].rstrip("s")) >= 86400
    # Exponential backoff: the attempts themselves must span the day (the worker dead-letters on the last).
    backoff, spent = int(retry["min_backoff"].rstrip("s")), 0
    for doubling in range(retry["max_attempts"] - 1):
        spent += min(backoff * 2 ** min(doubling, retry["max_doublings"]), int(retry["max_backoff"].rstrip("s")))
    assert spent >= 86400
    worker_env = the_function(model, "handle_task")["service_config"]["environment_variables"]
    # The worker dead-letters before the queue gives up, and the queue keeps attempts past that one
    # for a bucket that cannot take the letter then (the event is never dropped by the queue).
    assert int(worker_env["TASK_MAX_ATTEMPTS"]) + 12 == retry["max_attempts"]
    assert environment(model)["TASKS_QUEUE"] == f"projects/my-search-firm-prod/locations/{queue['location']}/queues/{queue['name']}"


def test_the_worker_is_private_same_code_and_holds_all_of_stardex_s_rate():
    model = evaluated("queued")
    worker, public = the_function(model, "handle_task"), the_function(model)
    archive = [{key: f["build_config"]["source"]["storage_source"][key] for key in ("bucket", "object")} for f in (worker, public)]
    assert archive[0] == archive[1], "the same source archive"
    service = worker["service_config"]
    assert service["max_instance_count"] == 1
    env = service["environment_variables"]
    assert env["STARDEX_REQUESTS_PER_MINUTE"] == "60"
    assert float(env["TASK_DEADLINE_SECONDS"]) < service["timeout_seconds"]
    assert env.get("DELIVERY", "sync") == "sync", "the worker delivers; it never enqueues"
    invokers = [m for m in model["google_cloud_run_v2_service_iam_member"] if "worker" in json.dumps(m["name"])]
    (invoker,) = invokers
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["member"] == "serviceAccount:${google_service_account.tasks[0].email}", "no allUsers"
    (tasks_account,) = [a for a in model["google_service_account"] if a["account_id"].endswith("-tasks")]
    public_env = environment(model)
    assert public_env["TASKS_SERVICE_ACCOUNT"] == f"{tasks_account['account_id']}@my-search-firm-prod.iam.gserviceaccount.com"
    assert public_env["TASKS_WORKER_URL"] == f"https://europe-west1-my-search-firm-prod.cloudfunctions.net/{worker['name']}"
    assert public_env["DELIVERY"] == "queued"


def test_dead_letters_and_503s_are_counted_and_alert_the_channels_named():
    model = evaluated("queued")
    (metric,) = [m for m in model["google_logging_metric"] if m["name"].endswith("-undelivered")]
    assert '(severity=ERROR AND jsonPayload.outcome="dead_lettered")' in metric["filter"] and "jsonPayload.status_code=503" in metric["filter"]
    assert '"stardex-webhook"' in metric["filter"] and '"stardex-webhook-worker"' in metric["filter"]
    (policy,) = [p for p in model["google_monitoring_alert_policy"] if "dead letters" in p["display_name"]]
    assert policy["notification_channels"] == ["projects/my-search-firm-prod/notificationChannels/123"]
    assert f'metric.type="logging.googleapis.com/user/{metric["name"]}"' in policy["conditions"]["condition_threshold"]["filter"]


@pytest.mark.parametrize("name", ["delivery_mode", "claim_retention_days", "dead_letter_retention_days", "state_kms_key_name",
                                  "queue_max_dispatches_per_second", "worker_concurrency", "task_deadline_seconds",
                                  "task_max_attempts", "task_max_retry_seconds"])
def test_the_durability_variables_are_validated(name):
    assert blocks(INFRA / "variables.tf", "variable")[name].get("validation"), name


def test_queued_delivery_without_the_state_bucket_is_refused_at_plan():
    """The function refuses to start with DELIVERY=queued and no STATE_BUCKET: Terraform says so first."""
    conditions = [rule["condition"] for rule in blocks(INFRA / "variables.tf", "variable")["delivery_mode"]["validation"]]
    assert '${var.delivery_mode != "queued" || var.state_bucket}' in conditions


# ---- seeing what happened: the dashboard's metrics and the alerts (monitoring.tf) ------------------

# The one chart not drawn from a log: Cloud Tasks' own count of the tasks waiting in the queue.
BUILT_IN = {"cloudtasks.googleapis.com/queue/depth"}
NEW_ALERTS = ("dead letter has waited", "sender's webhooks are refused", "5xx answers", "Stardex budget")


def dashboard(case: str = "queued") -> dict:
    (board,) = evaluated(case)["google_monitoring_dashboard"]
    return json.loads(board["dashboard_json"])


def metrics(case: str = "queued") -> dict[str, dict]:
    return {metric["name"]: metric for metric in evaluated(case)["google_logging_metric"]}


def chart_filters(case: str = "queued") -> list[str]:
    return [data["timeSeriesQuery"]["timeSeriesFilter"]["filter"]
            for tile in dashboard(case)["mosaicLayout"]["tiles"] for data in tile["widget"]["xyChart"]["dataSets"]]


def charted_metric(filter_text: str) -> str:
    (metric_type,) = re.findall(r'metric\.type="([^"]+)"', filter_text)
    return metric_type


@pytest.mark.parametrize("case", ["defaults", "queued"])
def test_every_chart_names_a_metric_the_module_defines_and_every_metric_is_charted(case):
    defined = {f"logging.googleapis.com/user/{name}" for name in metrics(case)}
    charted = [charted_metric(text) for text in chart_filters(case)]
    assert set(charted) - defined <= BUILT_IN, "a chart of a metric nobody defines draws nothing"
    assert defined <= set(charted), f"metrics never charted: {sorted(defined - set(charted))}"


def test_the_dashboard_shows_what_the_issue_asks_for():
    titles = [tile["widget"]["title"] for tile in dashboard()["mosaicLayout"]["tiles"]]
    for wanted in ("by sender and outcome", "p50, p95, p99", "Stardex calls", "429", "Queue depth", "Task attempts",
                   "Dead letters waiting", "left out (skipped), by sender"):
        assert any(wanted in title for title in titles), wanted
    (budget,) = [tile["widget"]["xyChart"] for tile in dashboard()["mosaicLayout"]["tiles"] if "Stardex calls" in tile["widget"]["title"]]
    assert budget["thresholds"][0]["value"] == 60, "the calls are drawn against Stardex's 60 a minute"


def logged_fields() -> set[str]:
    """Every field the function's lines carry: a worker's answer that reached Stardex with a value
    left out (and the dead-letter count), and one whose history write failed."""
    bucket, stream = MemoryBucket(), io.StringIO()
    history = EventHistory(MemoryStore(bucket), SecretProvider(load_settings({})), JsonLog(stream=stream))

    def work(record):
        record.update(source="greenhouse", event="hire", delivery_id="d", received_at=0.0, attempts=2,
                      stardex_calls_last_minute=3, skipped=[{"path": "$.emails[0].value", "reason": "r"}])
        return 200, {"status": "updated", "person_id": "p", "fields": ["name"],
                     "skipped": [{"path": "$.emails[0].value", "reason": "r"}]}, {}

    bucket.blob("dead-letters/greenhouse/20260101T000000Z-a-b.json").upload_from_string("{}")
    answered(JsonLog(stream=stream), work, history)  # written: the dead letters are counted too
    bucket.fail_writes = True
    answered(JsonLog(stream=stream), work, history)
    return {key for line in stream.getvalue().splitlines() for key in json.loads(line)}


def test_every_field_a_metric_reads_is_one_the_code_logs():
    read = set()
    for metric in metrics().values():
        text = " ".join([metric["filter"], metric.get("value_extractor") or "", *(metric.get("label_extractors") or {}).values()])
        read |= set(re.findall(r"jsonPayload\.(\w+)", text))
    assert {"source", "outcome", "status_code", "latency_ms", "attempts", "stardex_calls_last_minute",
            "dead_letters_waiting", "oldest_dead_letter_seconds", "reason", "message"} <= read
    assert read <= logged_fields()


def test_the_429_metric_matches_the_stardex_clients_retry_line():
    (metric,) = [m for m in metrics().values() if m["name"].endswith("-stardex-429")]
    pattern = re.search(r'jsonPayload\.message=~"([^"]+)"', metric["filter"]).group(1)
    assert re.search(pattern, "stardex GET /persons/{id}: HTTP 429, retry 1 in 0.25s")
    assert not re.search(pattern, "stardex GET /persons/{id}: HTTP 503, retry 1 in 0.25s")


def test_the_429_metric_counts_a_429_the_client_does_not_retry():
    """Stardex's 429 carries a Retry-After (30 s here) longer than a webhook's time left: the
    client gives up at once, with no retry line. That 429 must still be counted on the dashboard."""
    import responses

    from stardex_webhook.deadline import Deadline
    from stardex_webhook.stardex import RateLimiter, StardexClient
    from tests.helpers.fake_time import FakeTime

    (metric,) = [m for m in metrics().values() if m["name"].endswith("-stardex-429")]
    pattern = re.search(r'jsonPayload\.message=~"([^"]+)"', metric["filter"]).group(1)
    clock, stream = FakeTime(), io.StringIO()
    client = StardexClient("https://stardex.test/v1", lambda refresh, deadline: "key",
                           RateLimiter(60, clock=clock.clock, sleep=clock.sleep), sleep=clock.sleep,
                           wall_clock=clock.wall, log=JsonLog(stream=stream))
    with responses.RequestsMock() as mocked:
        mocked.post("https://stardex.test/v1/persons/search", status=429, headers={"Retry-After": "30"},
                    json={"success": False, "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"}})
        with pytest.raises(Exception, match="429"):
            client.search_persons(Deadline(10, clock=clock.clock), email="a@b.test")
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert [message for message in messages if re.search(pattern, message)], messages


def test_without_notification_channels_no_new_alert_is_made():
    names = [policy["display_name"] for policy in evaluated("defaults").get("google_monitoring_alert_policy", [])]
    assert not [name for name in names if any(alert in name for alert in NEW_ALERTS)]


def test_with_channels_the_four_alerts_watch_what_a_team_acts_on():
    policies = {alert: policy for policy in evaluated("queued")["google_monitoring_alert_policy"]
                for alert in NEW_ALERTS if alert in policy["display_name"]}
    assert set(policies) == set(NEW_ALERTS)
    for policy in policies.values():
        assert policy["notification_channels"] == ["projects/my-search-firm-prod/notificationChannels/123"]
        assert "python -m stardex_webhook.history" in policy["documentation"]["content"] or "Stardex" in policy["display_name"]
    waiting = policies["dead letter has waited"]["conditions"]["condition_threshold"]
    assert "oldest-dead-letter-seconds" in waiting["filter"] and waiting["threshold_value"] == 3600
    share = policies["sender's webhooks are refused"]["conditions"]["condition_threshold"]
    assert 'status_code=monitoring.regex.full_match("4[0-9][0-9]")' in share["filter"] and "-webhooks" in share["denominator_filter"]
    assert share["duration"] == "900s" and share["threshold_value"] == 0.5
    assert share["aggregations"]["group_by_fields"] == ["metric.label.source"] == share["denominator_aggregations"]["group_by_fields"]
    errors = policies["5xx answers"]["conditions"]["condition_threshold"]
    assert 'full_match("5[0-9][0-9]")' in errors["filter"] and errors["threshold_value"] == 0
    budget = policies["Stardex budget"]["conditions"]["condition_threshold"]
    assert budget["threshold_value"] == 54 and budget["duration"] == "600s"


@pytest.mark.parametrize("base", ["https://api.stardex.ai/v1", "https://api.stardex.ai/v1/", "https://api.stardex.ai",
                                  "https://api.stardex.ai/", "https://proxy.example.com/stardex/v2"])
def test_stardex_api_base_is_refused_at_plan_exactly_when_the_function_would_not_start(base):
    """A base without /v1 stops the function at start: Terraform must say so at plan, not leave a
    deploy that fails minutes later with a container that will not start."""
    (rule,) = blocks(INFRA / "variables.tf", "variable")["stardex_api_base"]["validation"]
    pattern = re.search(r'regex\("(.*)", var\.stardex_api_base\)', rule["condition"]).group(1).replace("\\\\", "\\")
    try:
        load_settings({"STARDEX_API_BASE": base})
        starts = True
    except Exception:
        starts = False
    assert bool(re.search(pattern, base)) == starts, (base, pattern)


def test_phone_default_region_is_refused_at_plan_exactly_when_the_function_would_not_start():
    """"UK" is two capitals but no region phonenumbers knows (GB is): the function would not start."""
    import phonenumbers

    (rule,) = blocks(INFRA / "variables.tf", "variable")["phone_default_region"]["validation"]
    listed = re.search(r'split\(" ", "([A-Z ]+)"\)', rule["condition"])
    assert listed, rule["condition"]
    assert set(listed.group(1).split()) == set(phonenumbers.SUPPORTED_REGIONS)
