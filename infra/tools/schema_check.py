"""Check every resource, data source, provider and module block under a folder against the providers' schemas.

No Terraform provider can be downloaded where this project is built, so ``terraform validate`` cannot
run. The providers' schemas are published on PyPI as the prebuilt CDKTF bindings: their jsii assembly
names each argument's Terraform name (in its registry link), its type and whether it is optional.
This reads the assembly once, keeps only what a check needs (``.ci/.tools/provider-schemas/``), and
reports, per block: an unknown resource or data source type, an unknown argument or nested block, a
missing required one, an argument written as a block or the other way round, a literal or a
variable of the wrong type, and a ``versions.tf`` constraint that does not start at the version
checked. Other expressions are left to the first ``terraform plan``.

    python infra/tools/schema_check.py [folder ...]     # default: infra/
"""

from __future__ import annotations

import difflib
import functools
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import hcl2

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".ci" / ".tools" / "provider-schemas"
# Provider name => the PyPI package of its CDKTF bindings, pinned (16.12.1 is google 6.50.0).
PACKAGES = {
    "google": ("cdktf-cdktf-provider-google", "16.12.1"),
    "archive": ("cdktf-cdktf-provider-archive", "11.0.1"),
}
BUILTIN = {"resource": {"terraform_data", "null_resource"}, "data": {"terraform_remote_state"}}
META = {
    "resource": {"count", "for_each", "depends_on", "provider", "lifecycle", "connection", "provisioner"},
    "data": {"count", "for_each", "depends_on", "provider", "lifecycle"},
    "provider": {"alias"},
    "module": {"source", "version", "count", "for_each", "depends_on", "providers"},
}
_LINK = re.compile(r"hashicorp/(\w+)/(\d+\.\d+\.\d+)/docs(?:/(resources|data-sources)/(\w+))?(?:#(\w+))?[ }]")


# ---- the schema: fetched once, reduced, cached -------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _reduce(assembly: dict) -> dict:
    """From a jsii assembly to {version, provider, resource: {type: node}, data: {type: node}}."""
    types = assembly["types"]

    def kind(t: dict):
        if "primitive" in t:
            return {"string": "string", "number": "number", "boolean": "bool", "date": "string"}.get(t["primitive"], "any")
        if "union" in t:
            rest = [x for x in t["union"]["types"] if x.get("fqn") != "cdktf.IResolvable"]
            return kind(rest[0]) if len(rest) == 1 else "any"
        if "collection" in t:
            element = kind(t["collection"]["elementtype"])
            if isinstance(element, dict):
                return {**element, "list": True}
            return "list" if t["collection"]["kind"] == "array" else "map"
        struct = types.get(t.get("fqn", ""))
        if struct and struct["kind"] == "interface" and struct.get("datatype"):
            return {"block": node(struct), "list": False}
        return "any"

    def node(struct: dict) -> dict:
        args, blocks, required = {}, {}, []
        for prop in struct.get("properties", []):
            docs = prop.get("docs", {})
            link = _LINK.search(docs.get("remarks", "") + " " + docs.get("summary", ""))
            name = link.group(5) if link and link.group(5) else _snake(prop["name"])
            value = kind(prop["type"])
            (blocks if isinstance(value, dict) else args)[name] = value
            if not prop.get("optional"):
                required.append(name)
        return {"args": args, "blocks": blocks, "required": sorted(required)}

    schema = {"resource": {}, "data": {}}
    for t in types.values():
        link = _LINK.search(t.get("docs", {}).get("summary", ""))
        if t["kind"] != "class" or not link or "initializer" not in t:
            continue
        (config,) = [p for p in t["initializer"]["parameters"] if p["name"] == "config"]
        body = node(types[config["type"]["fqn"]])
        schema["provider"], schema["version"] = link.group(1), link.group(2)
        if link.group(3) is None:
            schema["provider_config"] = body
        else:  # the link's text is the Terraform type: {@link https://…/docs/resources/storage_bucket google_storage_bucket}
            type_name = re.search(r"(\w+)\}", t["docs"]["summary"]).group(1)
            schema["resource" if link.group(3) == "resources" else "data"][type_name] = body
    return schema


def _extract(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(archive.read(member))) as tgz:
            return json.load(tgz.extractfile("package/.jsii"))


@functools.lru_cache(maxsize=None)
def load_schema(provider: str, cache: Path = CACHE) -> dict:
    """The reduced schema of one provider; downloads its package with pip the first time only."""
    package, version = PACKAGES[provider]
    cached = cache / f"{package}-{version}.json"
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", scratch, f"{package}=={version}"],
                check=True,
            )
            (wheel,) = Path(scratch).glob("*.whl")
            reduced = _reduce(_extract(wheel))
        partial = cached.with_suffix(".part")
        partial.write_text(json.dumps(reduced, separators=(",", ":"), sort_keys=True))
        partial.replace(cached)
    return json.loads(cached.read_text())


# ---- the check ---------------------------------------------------------------------------------


def _name(label: str) -> str:
    return label[1:-1] if label.startswith('"') and label.endswith('"') else label


def _is_block(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


_VARIABLE = re.compile(r"\$\{var\.(\w+)\}")
# A variable's declared type, as a literal of it would be written; a string variable's content is
# not known, so it counts as a template (Terraform converts "60" to a number when it runs).
_DECLARED = {"string": "template", "number": "number", "bool": "bool", "list": "list", "set": "list", "tuple": "list", "map": "map", "object": "map"}


def _declared_type(spec: dict) -> str | None:
    declared = _name(str(spec.get("type", ""))).removeprefix("${").removesuffix("}")
    return _DECLARED.get(declared.split("(", 1)[0].strip())


def _literal_type(value, variables: dict[str, str | None]):
    """The type of a value as written (a literal, or a bare var.NAME), or None when it is not known here."""
    if isinstance(value, str) and (ref := _VARIABLE.fullmatch(value)):
        return variables.get(ref.group(1))
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, str) and value.startswith('"') and value.endswith('"'):
        return "template" if "${" in value else "string"
    return None


def _type_error(expected: str, value, variables: dict[str, str | None]) -> str | None:
    written = _literal_type(value, variables)
    if written is None or expected == "any" or written == expected:
        return None
    if expected == "string" and written in {"number", "bool", "template"}:
        return None  # Terraform converts these to strings
    if written == "template" and expected in {"number", "bool"}:
        return None  # the value is only known after interpolation
    if written == "string" and expected == "number" and re.fullmatch(r"-?\d+(\.\d+)?", _name(value)):
        return None
    if written == "string" and expected == "bool" and _name(value) in {"true", "false"}:
        return None
    return f"expects {expected}, got {written} {value!r}"


class Checker:
    def __init__(self, schemas: dict[str, dict]):
        self.schemas = schemas
        self.errors: list[str] = []
        self.variables: dict[str, str | None] = {}  # the folder's variables and their types

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def unknown(self, where: str, what: str, name: str, known) -> None:
        close = difflib.get_close_matches(name, list(known), n=1)
        self.error(where, f"unknown {what} {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))

    def body(self, body: dict, node: dict, where: str, meta: set[str] = frozenset()) -> None:
        present = set()
        for key, value in body.items():
            if key.startswith("__") or key in meta:
                continue
            if key == "dynamic" and isinstance(value, list):
                for dynamic in value:
                    for label, spec in dynamic.items():
                        if label.startswith("__"):
                            continue
                        name = _name(label)
                        present.add(name)
                        if name not in node["blocks"]:
                            self.unknown(where, "block", name, node["blocks"])
                            continue
                        for content in spec.get("content", []):
                            self.body(content, node["blocks"][name]["block"], f"{where}.{name}")
                continue
            present.add(key)
            if key in node["blocks"]:
                spec = node["blocks"][key]
                if not _is_block(value):
                    self.error(where, f"{key} is a block ({key} {{ ... }}), not an argument")
                    continue
                if len(value) > 1 and not spec["list"]:
                    self.error(where, f"block {key} may appear only once")
                for item in value:
                    self.body(item, spec["block"], f"{where}.{key}")
            elif key in node["args"]:
                if _is_block(value):
                    self.error(where, f"{key} is an argument ({key} = ...), not a block")
                elif problem := _type_error(node["args"][key], value, self.variables):
                    self.error(where, f"{key} {problem}")
            else:
                self.unknown(where, "argument or block", key, {**node["args"], **node["blocks"]})
        for name in node["required"]:
            if name not in present:
                self.error(where, f"missing required {'block' if name in node['blocks'] else 'argument'} {name!r}")

    def typed_block(self, kind: str, type_name: str, body: dict, where: str) -> None:
        if type_name in BUILTIN[kind]:
            return
        schema = self.schemas.get(type_name.split("_", 1)[0])
        if schema is None:
            self.error(where, f"no schema is checked for the provider of {type_name!r} (known: {sorted(self.schemas)})")
        elif type_name not in schema[kind]:
            self.unknown(where, "resource type" if kind == "resource" else "data source", type_name, schema[kind])
        else:
            self.body(body, schema[kind][type_name], where, META[kind])

    def versions(self, terraform: dict, where: str) -> None:
        for providers in terraform.get("required_providers", []):
            for name, spec in providers.items():
                if name.startswith("__") or name not in self.schemas:
                    continue
                version = self.schemas[name]["version"]
                expected = f">= {version}, < {int(version.split('.')[0]) + 1}.0.0"
                if _name(spec.get("source", "")) != f"hashicorp/{name}":
                    self.error(where, f"provider {name} must come from hashicorp/{name}")
                if _name(spec.get("version", "")) != expected:
                    self.error(where, f"provider {name} constraint must be {expected!r}: its schema is checked at {version}")

    def module(self, folder: Path, label: str, body: dict, where: str) -> None:
        source = _name(body.get("source", ""))
        target = (folder / source).resolve()
        if not source.startswith(".") or not target.is_dir():
            self.error(where, f"module source {source!r} is not a local folder this check can read")
            return
        variables = _variables(target)
        expected = {n: {"template": "string", None: "any"}.get(t, t) for n, t in ((n, _declared_type(s)) for n, s in variables.items())}
        node = {"args": expected, "blocks": {}, "required": [n for n, s in variables.items() if "default" not in s]}
        self.body(body, node, where, META["module"])

    def folder(self, folder: Path) -> None:
        self.variables = {name: _declared_type(spec) for name, spec in _variables(folder).items()}
        for path in sorted(folder.glob("*.tf")):
            parsed = hcl2.load(path.open())
            rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            for kind in ("resource", "data"):
                for block in parsed.get(kind, []):
                    for type_label, instances in block.items():
                        for label, body in instances.items():
                            name = f"{_name(type_label)}.{_name(label)}"
                            self.typed_block(kind, _name(type_label), body, f"{rel}: {'data.' if kind == 'data' else ''}{name}")
            for block in parsed.get("provider", []):
                for label, body in block.items():
                    schema = self.schemas.get(_name(label))
                    if schema is None:
                        self.error(f"{rel}: provider {_name(label)}", "no schema is checked for this provider")
                    else:
                        self.body(body, schema["provider_config"], f"{rel}: provider {_name(label)}", META["provider"])
            for block in parsed.get("module", []):
                for label, body in block.items():
                    self.module(folder, _name(label), body, f"{rel}: module.{_name(label)}")
            for terraform in parsed.get("terraform", []):
                self.versions(terraform, f"{rel}: terraform")


def _variables(folder: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as handle:
            for block in hcl2.load(handle).get("variable", []):
                found.update({_name(name): spec for name, spec in block.items()})
    return found


def check(root: Path, cache: Path = CACHE) -> list[str]:
    """Every problem found in the .tf files of ``root`` and the folders below it."""
    checker = Checker({name: load_schema(name, cache) for name in PACKAGES})
    folders = sorted({p.parent for p in root.rglob("*.tf") if ".terraform" not in p.parts})
    for folder in folders:
        checker.folder(folder)
    return checker.errors


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [REPO / "infra"]
    errors = [e for root in roots for e in check(root.resolve())]
    for line in errors:
        print(f"schema-check: {line}", file=sys.stderr)
    versions = ", ".join(f"{name} {load_schema(name)['version']}" for name in PACKAGES)
    print(f"schema-check: {'FAILED' if errors else 'every block matches'} the provider schemas ({versions})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
