#!/usr/bin/env python3
"""Validate and cross-check the SpinKube deployment of the OIDC client.

Checks (every one is reported; the exit status is 1 if any fails):

* every YAML document under kubernetes/ and runtime-class/ parses (duplicate keys are
  errors) and validates: built-in kinds against the strict Kubernetes schemas bundled
  by kubernetes-validate, SpinApp and SpinAppExecutor against the openAPIV3Schema of
  the spin-operator CRDs with unknown fields turned into errors;
* the kind cluster config (runtime-class/kind-cluster.yaml) against the subset of
  kind's v1alpha4 Cluster schema that it uses, unknown fields being errors;
* cross-checks between the manifests, spin.toml and kubernetes/README.md (variables,
  Secret/ConfigMap keys, key-value store, the Redis password, executor and runtime
  class names, the shim's containerd runtime, the HPA and the SpinApp it scales,
  files and resources named by kubectl commands, the node images, the image
  reference).

With --emit-runtime-config PATH it also writes the runtime-config.toml that
spin-operator renders for the SpinApp that has spec.runtimeConfig (v3), with the
redis url replaced by --redis-url, so a test can run the component with that file.

Exit status: 0 all checks passed, 1 a check failed, 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

try:
    import jsonschema
    import kubernetes_validate
    import yaml
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.stderr.write(
        f"check.py: missing dependency ({exc}); install testing/manifests/requirements.txt:\n"
        "  python3 -m pip install -r testing/manifests/requirements.txt\n"
    )
    sys.exit(2)

REPO_DEFAULT = Path(__file__).resolve().parents[2]
SCHEMA_ENV = "SPINKUBE_SCHEMA_DIR"
K8S_VERSION_DEFAULT = "1.33"
MANIFEST_DIRS = ("kubernetes", "runtime-class")
README = "kubernetes/README.md"
SPINKUBE_GROUP = "core.spinkube.dev"
CRD_FILES = {
    "SpinApp": "core.spinkube.dev_spinapps.yaml",
    "SpinAppExecutor": "core.spinkube.dev_spinappexecutors.yaml",
}
# Label spin-operator puts on the pods (and the runtime-config Secret) of a SpinApp.
APP_NAME_LABEL = "core.spinkube.dev/app-name"
# Secret spin-operator creates when an executor has installDefaultCACerts and no caCertSecret.
DEFAULT_CA_SECRET = "spin-ca"
# kubectl commands with -n/--namespace may only address these namespaces (cluster
# infrastructure that this exercise installs but does not define).
INFRA_NAMESPACES = {"cert-manager", "spin-operator", "kube-system", "traefik"}
# What the SpinApps must look like for this exercise.
EXPECTED_PROBES = {"readiness": "/readyz", "liveness": "/healthz"}
EXPECTED_RUNTIME_CLASS_HANDLER = "spin"
V2_FILE = "kubernetes/client1-v2.yaml"
V3_FILE = "kubernetes/client1-v3.yaml"
AUTOSCALING_FILE = "kubernetes/client1-v3-autoscaling.yaml"
STORE_TYPES = {"redis": {"required": {"url"}, "allowed": {"url"}}}
# Servers of the session store that take redis-server's flags (Valkey is a fork).
REDIS_SERVERS = {"redis-server", "valkey-server"}
# The containerd runtime type of containerd-shim-spin (binary containerd-shim-spin-v2).
SPIN_RUNTIME_TYPE = "io.containerd.spin.v2"
# Node images with containerd-shim-spin: <repository>/<k3d|kind>:v<shim version>.
SHIM_IMAGE = re.compile(r"^ghcr\.io/spinframework/containerd-shim-spin/(k3d|kind):(v\d+\.\d+\.\d+)$")
# kind's cluster config: not a Kubernetes object, read by `kind create cluster --config`.
KIND_CONFIG_API = "kind.x-k8s.io/v1alpha4"
# The part of kind's v1alpha4 Cluster type (sigs.k8s.io/kind/pkg/apis/config/v1alpha4)
# that this repository uses; any other field is reported, so a typo cannot pass.
KIND_CLUSTER_SCHEMA = {
    "type": "object",
    "required": ["kind", "apiVersion"],
    "additionalProperties": False,
    "properties": {
        "kind": {"const": "Cluster"},
        "apiVersion": {"const": KIND_CONFIG_API},
        "name": {"type": "string"},
        "containerdConfigPatches": {"type": "array", "items": {"type": "string"}},
        "nodes": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["role"],
            "additionalProperties": False,
            "properties": {
                "role": {"enum": ["control-plane", "worker"]},
                "image": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "extraPortMappings": {"type": "array", "items": {
                    "type": "object",
                    "required": ["containerPort"],
                    "additionalProperties": False,
                    "properties": {
                        "containerPort": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "hostPort": {"type": "integer", "minimum": 0, "maximum": 65535},
                        "listenAddress": {"type": "string"},
                        "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                    },
                }},
            },
        }},
    },
}

KIND_ALIASES = {
    "spinapp": "SpinApp", "spinapps": "SpinApp",
    "spinappexecutor": "SpinAppExecutor", "spinappexecutors": "SpinAppExecutor",
    "runtimeclass": "RuntimeClass", "runtimeclasses": "RuntimeClass",
    "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
    "service": "Service", "services": "Service", "svc": "Service",
    "ingress": "Ingress", "ingresses": "Ingress", "ing": "Ingress",
    "configmap": "ConfigMap", "configmaps": "ConfigMap", "cm": "ConfigMap",
    "persistentvolumeclaim": "PersistentVolumeClaim", "persistentvolumeclaims": "PersistentVolumeClaim",
    "pvc": "PersistentVolumeClaim",
    "secret": "Secret", "secrets": "Secret",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler", "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "hpa": "HorizontalPodAutoscaler",
}
UNCHECKED_KINDS = {"pod", "pods", "po", "namespace", "namespaces", "ns", "node", "nodes",
                   "no", "event", "events", "ev", "endpoints", "ep", "all",
                   "replicaset", "replicasets", "rs"}
# kubectl flags that take a separate value.
KUBECTL_VALUE_FLAGS = {
    "-n", "--namespace", "-l", "--selector", "-o", "--output", "-p", "--patch", "--type",
    "-f", "--filename", "-k", "--kustomize", "-c", "--container", "--for", "--timeout",
    "--replicas", "--field-selector", "--context", "--kubeconfig", "-L", "--label-columns",
    "--tail", "--since", "--from-literal", "--from-file", "--from-env-file",
    "--docker-server", "--docker-username", "--docker-password", "--address",
    "--image", "--restart",
}
KUBECTL_RESOURCE_VERBS = {"get", "describe", "delete", "patch", "edit", "scale", "label",
                          "annotate", "port-forward", "logs", "exec", "wait", "autoscale",
                          "set", "expose", "rollout"}


# --------------------------------------------------------------------------- results

@dataclass
class Report:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str, why: str = "") -> bool:
        if ok:
            self.passed.append(what)
        else:
            self.failed.append(f"{what}: {why}" if why else what)
        return ok

    def fail(self, message: str) -> None:
        self.failed.append(message)

    def ok(self, message: str) -> None:
        self.passed.append(message)


class SetupError(Exception):
    """The checks cannot run (missing schema directory, unreadable spin.toml, ...)."""


# --------------------------------------------------------------------------- YAML

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that rejects duplicate mapping keys (PyYAML keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r}", key_node.start_mark)
        seen[key] = True
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class Doc:
    path: str  # relative to the repo root
    index: int
    body: dict

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        meta = self.body.get("metadata") or {}
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""

    @property
    def where(self) -> str:
        return f"{self.path}#{self.index} {self.kind or '?'}/{self.name or '?'}"


def load_manifests(repo: Path, report: Report) -> list[Doc]:
    docs: list[Doc] = []
    files: list[Path] = []
    for d in MANIFEST_DIRS:
        base = repo / d
        if not base.is_dir():
            report.fail(f"{d}/: directory missing")
            continue
        files += sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml"))
    if not files:
        report.fail("no YAML manifests found under " + ", ".join(MANIFEST_DIRS))
    for f in files:
        rel = f.relative_to(repo).as_posix()
        try:
            loaded = list(yaml.load_all(f.read_text(encoding="utf-8"), Loader=_StrictLoader))
        except yaml.YAMLError as exc:
            report.fail(f"{rel}: YAML does not parse: {exc}")
            continue
        n = 0
        for i, body in enumerate(loaded):
            if body is None:
                continue
            n += 1
            if not isinstance(body, dict):
                report.fail(f"{rel}#{i}: a document must be a mapping, got {type(body).__name__}")
                continue
            docs.append(Doc(rel, i, body))
        report.check(n > 0, f"{rel}: parses", "no YAML document in it")
    return docs


# --------------------------------------------------------------------------- schemas

def close_schema(schema: Any) -> Any:
    """Copy of an OpenAPI v3 schema with additionalProperties: false on every object
    schema that has properties and no additionalProperties (unknown fields -> errors).
    Schemas marked x-kubernetes-preserve-unknown-fields stay open."""
    if isinstance(schema, list):
        return [close_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: close_schema(v) for k, v in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@dataclass
class CrdSchema:
    kind: str
    group: str
    validators: dict[str, Any]  # version -> validator
    has_scale: bool


def load_crds(schema_dir: Path) -> dict[str, CrdSchema]:
    return dict(_load_crds(str(schema_dir.resolve())))


@functools.lru_cache(maxsize=4)
def _load_crds(schema_dir_name: str) -> tuple[tuple[str, CrdSchema], ...]:
    schema_dir = Path(schema_dir_name)
    if not schema_dir.is_dir():
        raise SetupError(
            f"SpinKube CRD directory {schema_dir} not found; set {SCHEMA_ENV} or --schemas "
            "(the repository expects shared/ as its sibling)")
    crds: dict[str, CrdSchema] = {}
    for kind, fname in CRD_FILES.items():
        path = schema_dir / fname
        try:
            crd = yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
        except (OSError, yaml.YAMLError) as exc:
            raise SetupError(f"cannot read CRD {path}: {exc}") from exc
        spec = crd["spec"]
        if spec["names"]["kind"] != kind:
            raise SetupError(f"{path} defines kind {spec['names']['kind']}, expected {kind}")
        validators = {}
        has_scale = False
        for version in spec["versions"]:
            schema = close_schema(version["schema"]["openAPIV3Schema"])
            jsonschema.Draft7Validator.check_schema(schema)
            validators[version["name"]] = jsonschema.Draft7Validator(schema)
            has_scale = has_scale or "scale" in (version.get("subresources") or {})
        crds[kind] = CrdSchema(kind, spec["group"], validators, has_scale)
    return tuple(crds.items())


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out.lstrip(".") or "(top level)"


_BUILTIN_CACHE: dict[tuple[str, str], list[str]] = {}


def validate_builtin(body: dict, k8s_version: str) -> list[str]:
    """Strict validation with kubernetes-validate (reports the first error)."""
    key = (json.dumps(body, sort_keys=True, default=str), k8s_version)
    if key not in _BUILTIN_CACHE:  # kubernetes-validate re-reads its schema files on every call
        try:
            kubernetes_validate.validate(body, k8s_version, strict=True)
            errors: list[str] = []
        except kubernetes_validate.ValidationError as exc:
            errors = [f"{_path(exc.path)}: {exc.message}"]
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors = [exc.message]
        _BUILTIN_CACHE[key] = errors
    return list(_BUILTIN_CACHE[key])


def validate_crd_object(body: dict, crds: dict[str, CrdSchema], k8s_version: str) -> list[str]:
    kind = body.get("kind")
    crd = crds[kind]
    group, _, version = str(body.get("apiVersion", "")).partition("/")
    if group != crd.group or version not in crd.validators:
        return [f"apiVersion {body.get('apiVersion')!r} is not served by the {kind} CRD "
                f"({', '.join(crd.group + '/' + v for v in crd.validators)})"]
    errors = [f"{_path(e.absolute_path)}: {e.message}"
              for e in sorted(crd.validators[version].iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))]
    # The CRD leaves metadata open; the API server validates it as ObjectMeta.
    meta = body.get("metadata")
    if isinstance(meta, dict):
        probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
        errors += [e.replace("(top level)", "metadata") for e in validate_builtin(probe, k8s_version)]
    return errors


def is_kind_config(doc: Doc) -> bool:
    return str(doc.body.get("apiVersion", "")).split("/")[0] == KIND_CONFIG_API.split("/")[0]


def validate_docs(docs: list[Doc], crds: dict[str, CrdSchema], k8s_version: str, report: Report) -> None:
    for doc in docs:
        b = doc.body
        if not b.get("apiVersion") or not doc.kind:
            report.fail(f"{doc.where}: apiVersion and kind are required")
            continue
        if not doc.name and not is_kind_config(doc):
            report.fail(f"{doc.where}: metadata.name is required")
        if str(b["apiVersion"]).split("/")[0] == KIND_CONFIG_API.split("/")[0]:
            validator = jsonschema.Draft7Validator(KIND_CLUSTER_SCHEMA)
            errors = [f"{_path(e.absolute_path)}: {e.message}"
                      for e in sorted(validator.iter_errors(b), key=lambda e: list(map(str, e.absolute_path)))]
            report.check(not errors, f"{doc.where}: validates against kind {KIND_CONFIG_API} Cluster (the fields used here)",
                         "; ".join(errors))
            continue
        if doc.kind in crds and str(b["apiVersion"]).startswith(SPINKUBE_GROUP + "/"):
            errors = validate_crd_object(b, crds, k8s_version)
            against = "spin-operator CRD"
        elif str(b["apiVersion"]).split("/")[0].endswith(SPINKUBE_GROUP):
            errors = [f"no CRD schema for {b['apiVersion']} {doc.kind}"]
            against = "spin-operator CRD"
        else:
            errors = validate_builtin(b, k8s_version)
            against = f"Kubernetes {k8s_version} (strict)"
        report.check(not errors, f"{doc.where}: validates against {against}", "; ".join(errors))


# --------------------------------------------------------------------------- README

@dataclass
class Command:
    tokens: list[str]
    pipeline: list[list[str]]  # the whole pipeline this command belongs to
    line: str


@dataclass
class ReadmeInfo:
    commands: list[Command]
    env: dict[str, str]
    secrets: dict[str, dict[str, str]]     # name -> key -> value (as written, vars expanded)
    configmaps: dict[str, dict[str, str]]


SHELL_LANGS = {"sh", "bash", "shell", "console", "zsh"}
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_SUBST = re.compile(r"\$\(([^()]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), text)


def shell_snippets(markdown: str) -> list[str]:
    """Commands from fenced shell blocks (continuations joined) and from inline code
    spans that start with kubectl or spin."""
    out: list[str] = []
    in_block = False
    lang = ""
    pending = ""
    for raw in markdown.splitlines():
        fence = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", raw)
        if fence:
            if not in_block:
                in_block, lang = True, fence.group(2).lower()
            else:
                in_block = False
                if pending.strip():
                    out.append(pending)
                pending = ""
            continue
        if in_block:
            if lang not in SHELL_LANGS:
                continue
            line = raw.rstrip()
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            pending += line
            if pending.strip():
                out.append(pending)
            pending = ""
        else:
            for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", raw):
                if re.match(r"^(kubectl|spin)\s", span):
                    out.append(span)
    return out


def split_commands(line: str, env: dict[str, str]) -> list[list[list[str]]]:
    """A shell line -> pipelines -> commands -> tokens. $(...) substitutions become their
    own pipelines (and a placeholder token); $VARS are expanded from env."""
    nested: list[str] = []

    def sub(m: re.Match) -> str:
        nested.append(m.group(1))
        return f"__SUBST{len(nested) - 1}__"

    prev = None
    while prev != line:
        prev, line = line, _SUBST.sub(sub, line)
    pipelines: list[list[list[str]]] = []
    for inner in nested:
        pipelines += split_commands(inner, env)
    lex = shlex.shlex(line, posix=True, punctuation_chars="|&;")
    lex.whitespace_split = True
    lex.commenters = "#"
    try:
        tokens = list(lex)
    except ValueError as exc:
        raise ValueError(f"cannot parse shell line {line!r}: {exc}") from exc
    pipeline: list[list[str]] = []
    cmd: list[str] = []
    for tok in tokens:
        if tok in ("|",):
            pipeline.append(cmd)
            cmd = []
        elif tok in ("&&", "||", ";", "&", ";;"):
            pipeline.append(cmd)
            pipelines.append([c for c in pipeline if c])
            pipeline, cmd = [], []
        else:
            cmd.append(expand(tok, env))
    pipeline.append(cmd)
    pipelines.append([c for c in pipeline if c])
    return [p for p in pipelines if p]


def parse_readme(repo: Path, report: Report) -> ReadmeInfo | None:
    path = repo / README
    if not path.is_file():
        report.fail(f"{README}: missing")
        return None
    env: dict[str, str] = {}
    commands: list[Command] = []
    secrets: dict[str, dict[str, str]] = {}
    configmaps: dict[str, dict[str, str]] = {}
    for line in shell_snippets(path.read_text(encoding="utf-8")):
        try:
            pipelines = split_commands(line, env)
        except ValueError as exc:
            report.fail(f"{README}: {exc}")
            continue
        for pipeline in pipelines:
            for tokens in pipeline:
                # Variable assignments: `export NAME=value` or `NAME=value` alone.
                words = tokens[1:] if tokens[0] == "export" else tokens
                if words and all(re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w) for w in words):
                    for w in words:
                        name, _, value = w.partition("=")
                        if "__SUBST" in value:
                            env.pop(name, None)  # value only known at run time
                        else:
                            env[name] = value
                    continue
                commands.append(Command(tokens, pipeline, line))
                if tokens[:2] == ["kubectl", "create"] and len(tokens) > 3:
                    what = tokens[2]
                    if what == "secret" and len(tokens) > 4 and tokens[3] == "generic":
                        store, name, rest = secrets, tokens[4], tokens[5:]
                    elif what in ("configmap", "cm"):
                        store, name, rest = configmaps, tokens[3], tokens[4:]
                    else:
                        continue
                    keys = store.setdefault(name, {})
                    for t in rest:
                        m = re.match(r"^--from-literal=([^=]+)=(.*)$", t)
                        if m:
                            keys[m.group(1)] = m.group(2)
                            continue
                        m = re.match(r"^--from-file=([^=]+)=(.*)$", t)
                        if m:
                            keys[m.group(1)] = f"<file {m.group(2)}>"
    report.check(bool(commands), f"{README}: has shell commands", "no fenced sh/bash block found")
    return ReadmeInfo(commands, env, secrets, configmaps)


def kubectl_parts(tokens: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Positional words and flag values of a kubectl command (tokens[0] == 'kubectl')."""
    positional: list[str] = []
    flags: dict[str, list[str]] = {}
    i = 1
    while i < len(tokens):
        t = tokens[i]
        if t == "--":
            break  # the rest is the command run by exec
        if t.startswith("-") and t != "-":
            name, eq, value = t.partition("=")
            if eq:
                flags.setdefault(name, []).append(value)
            elif name in KUBECTL_VALUE_FLAGS and i + 1 < len(tokens):
                flags.setdefault(name, []).append(tokens[i + 1])
                i += 1
            else:
                flags.setdefault(name, []).append("")
        else:
            positional.append(t)
        i += 1
    return positional, flags


# --------------------------------------------------------------------------- model

@dataclass
class Model:
    repo: Path
    docs: list[Doc]
    spin: dict
    crds: dict[str, CrdSchema]
    readme: ReadmeInfo | None
    k8s_version: str = K8S_VERSION_DEFAULT

    def of_kind(self, kind: str) -> list[Doc]:
        return [d for d in self.docs if d.kind == kind]

    @property
    def spinapps(self) -> list[Doc]:
        return self.of_kind("SpinApp")

    def defined(self) -> dict[str, set[str]]:
        """kind -> names that exist once the README has been followed: the manifests,
        what spin-operator creates for them, and what the README creates itself."""
        out: dict[str, set[str]] = {}
        for d in self.docs:
            out.setdefault(d.kind, set()).add(d.name)
        executors = {d.name: d for d in self.of_kind("SpinAppExecutor")}
        for app in self.spinapps:
            spec = app.body.get("spec") or {}
            ex = executors.get(spec.get("executor"))
            if ex is not None and (ex.body.get("spec") or {}).get("createDeployment"):
                out.setdefault("Deployment", set()).add(app.name)
            out.setdefault("Service", set()).add(app.name)
        for ex in executors.values():
            cfg = (ex.body.get("spec") or {}).get("deploymentConfig") or {}
            if cfg.get("caCertSecret"):
                out.setdefault("Secret", set()).add(cfg["caCertSecret"])
            elif cfg.get("installDefaultCACerts"):
                out.setdefault("Secret", set()).add(DEFAULT_CA_SECRET)
        if self.readme:
            out.setdefault("Secret", set()).update(self.readme.secrets)
            out.setdefault("ConfigMap", set()).update(self.readme.configmaps)
        return out

    def labels(self) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == "labels" and isinstance(v, dict):
                        found.update((str(a), str(b)) for a, b in v.items())
                    else:
                        walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        for d in self.docs:
            walk(d.body)
        for app in self.spinapps:
            found.add((APP_NAME_LABEL, app.name))
            found.update(((app.body.get("spec") or {}).get("podLabels") or {}).items())
        return found


def spin_variables(spin: dict) -> dict[str, dict]:
    out = {}
    for name, decl in (spin.get("variables") or {}).items():
        out[name] = decl if isinstance(decl, dict) else {"default": decl}
    return out


def spin_kv_stores(spin: dict) -> set[str]:
    stores: set[str] = set()
    for comp in (spin.get("component") or {}).values():
        stores.update(comp.get("key_value_stores") or [])
    return stores


def app_variables(app: Doc) -> list[dict]:
    return [v for v in ((app.body.get("spec") or {}).get("variables") or []) if isinstance(v, dict)]


def key_refs(app: Doc) -> list[tuple[str, str, str, str]]:
    """(where, 'Secret'|'ConfigMap', name, key) for every key a SpinApp reads."""
    refs = []
    spec = app.body.get("spec") or {}
    sources = [(f"variable {v.get('name')}", v.get("valueFrom") or {}) for v in app_variables(app)]
    for section in ("keyValueStores", "sqliteDatabases"):
        for store in (spec.get("runtimeConfig") or {}).get(section) or []:
            for opt in store.get("options") or []:
                sources.append((f"runtimeConfig.{section}[{store.get('name')}].{opt.get('name')}",
                                opt.get("valueFrom") or {}))
    return _refs(sources)


def _refs(sources: list[tuple[str, dict]]) -> list[tuple[str, str, str, str]]:
    refs = []
    for where, vf in sources:
        if vf.get("secretKeyRef"):
            refs.append((where, "Secret", vf["secretKeyRef"].get("name", ""), vf["secretKeyRef"].get("key", "")))
        if vf.get("configMapKeyRef"):
            refs.append((where, "ConfigMap", vf["configMapKeyRef"].get("name", ""), vf["configMapKeyRef"].get("key", "")))
    return refs


def pod_containers(dep: Doc) -> list[dict]:
    spec = dep.body.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    return [c for c in (pod.get("containers") or []) + (pod.get("initContainers") or []) if isinstance(c, dict)]


def container_key_refs(dep: Doc) -> list[tuple[str, str, str, str]]:
    """(where, 'Secret'|'ConfigMap', name, key) for every env key a Deployment's containers read."""
    sources = []
    for c in pod_containers(dep):
        for e in c.get("env") or []:
            if isinstance(e, dict):
                sources.append((f"container {c.get('name')} env {e.get('name')}", e.get("valueFrom") or {}))
    return _refs(sources)


# --------------------------------------------------------------------------- cross-checks

def check_variables(m: Model, r: Report) -> None:
    declared = spin_variables(m.spin)
    required = sorted(n for n, d in declared.items() if d.get("required") and "default" not in d)
    secret_vars = {n for n, d in declared.items() if d.get("secret")}
    if not m.spinapps:
        r.fail("no SpinApp found in the manifests")
    for app in m.spinapps:
        names = [str(v.get("name")) for v in app_variables(app)]
        unknown = sorted(set(names) - set(declared))
        r.check(not unknown, f"{app.where}: every variable is declared in spin.toml [variables]",
                f"not declared: {', '.join(unknown)}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        r.check(not dupes, f"{app.where}: no variable set twice", f"set twice: {', '.join(dupes)}")
        missing = [n for n in required if n not in names]
        r.check(not missing, f"{app.where}: sets every required spin.toml variable without default",
                f"missing: {', '.join(missing)}")
        for v in app_variables(app):
            vf = v.get("valueFrom") or {}
            sources = [k for k in ("configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef") if vf.get(k)]
            has_value = "value" in v
            r.check(len(sources) + has_value == 1, f"{app.where}: variable {v.get('name')} has exactly one source",
                    f"has {len(sources) + has_value} (value and/or valueFrom.{'/'.join(sources)})")
            if v.get("name") in secret_vars:
                r.check(bool(vf.get("secretKeyRef")),
                        f"{app.where}: secret variable {v.get('name')} comes from a Secret",
                        "spin.toml marks it secret = true; use valueFrom.secretKeyRef")
            for ref in ("secretKeyRef", "configMapKeyRef"):
                if vf.get(ref) is not None:
                    r.check(bool(vf[ref].get("name")), f"{app.where}: variable {v.get('name')} {ref} names its object",
                            "name is empty (the CRD defaults it to \"\")")


def check_keys_created(m: Model, r: Report) -> None:
    if m.readme is None:
        return
    created = {"Secret": m.readme.secrets, "ConfigMap": m.readme.configmaps}
    read: set[tuple[str, str, str]] = set()
    readers = [(app, key_refs(app)) for app in m.spinapps] + [(dep, container_key_refs(dep)) for dep in m.of_kind("Deployment")]
    for app, refs in readers:
        for where, kind, name, key in refs:
            read.add((kind, name, key))
            have = created[kind].get(name)
            if have is None:
                r.fail(f"{app.where}: {where} reads {kind} {name!r}, which no "
                       f"`kubectl create {'secret generic' if kind == 'Secret' else 'configmap'} {name}` in {README} creates")
            else:
                r.check(key in have, f"{app.where}: {where} reads {kind} {name}/{key}, created in {README}",
                        f"{README} creates {kind} {name} with keys {sorted(have)}, not {key!r}")
    for kind, objs in created.items():
        for name, keys in objs.items():
            for key in keys:
                r.check((kind, name, key) in read, f"{README}: {kind} {name}/{key} is read by a SpinApp or Deployment",
                        "created but nothing reads it (misspelled or stale?)")


def check_names(m: Model, r: Report) -> None:
    executors = {d.name: d for d in m.of_kind("SpinAppExecutor")}
    runtime_classes = {d.name: d for d in m.of_kind("RuntimeClass")}
    r.check(bool(executors), "a SpinAppExecutor is defined", "none under runtime-class/ or kubernetes/")
    r.check(bool(runtime_classes), "a RuntimeClass is defined", "none under runtime-class/ or kubernetes/")
    for app in m.spinapps:
        ex = (app.body.get("spec") or {}).get("executor")
        r.check(ex in executors, f"{app.where}: executor {ex!r} is a defined SpinAppExecutor",
                f"defined: {sorted(executors) or 'none'}")
    for ex in executors.values():
        spec = ex.body.get("spec") or {}
        cfg = spec.get("deploymentConfig") or {}
        rc = cfg.get("runtimeClassName")
        r.check(rc in runtime_classes, f"{ex.where}: runtimeClassName {rc!r} is a defined RuntimeClass",
                f"defined: {sorted(runtime_classes) or 'none'}")
        r.check(spec.get("createDeployment") is True, f"{ex.where}: createDeployment is true",
                "the operator must create the Deployments")
        r.check(cfg.get("installDefaultCACerts") is True or bool(cfg.get("caCertSecret")),
                f"{ex.where}: pods get a CA bundle (the app calls the IdP over https)",
                "set deploymentConfig.installDefaultCACerts: true (or caCertSecret)")
    for rc in runtime_classes.values():
        r.check(rc.body.get("handler") == EXPECTED_RUNTIME_CLASS_HANDLER,
                f"{rc.where}: handler is {EXPECTED_RUNTIME_CLASS_HANDLER!r}", f"got {rc.body.get('handler')!r}")
    names = {app.name for app in m.spinapps}
    r.check(len(names) <= 1, "all SpinApps define the same app (v2, v3 and v3 autoscaling of one SpinApp)",
            f"names: {sorted(names)}")


def check_spinapp_shape(m: Model, r: Report) -> None:
    for app in m.spinapps:
        spec = app.body.get("spec") or {}
        checks = spec.get("checks") or {}
        for probe, path in EXPECTED_PROBES.items():
            got = ((checks.get(probe) or {}).get("httpGet") or {}).get("path")
            r.check(got == path, f"{app.where}: {probe} probe on {path}", f"got {got!r}")
        # While the store is away Spin's requests wait instead of failing, so only a
        # probe timeout turns a pod unready (testing/e2e/tests/faults.rs reads this value).
        ready = checks.get("readiness") or {}
        timeout = ready.get("timeoutSeconds")
        r.check(isinstance(timeout, int) and timeout >= 1 and timeout < (ready.get("periodSeconds") or 10),
                f"{app.where}: readiness probe has an explicit timeoutSeconds shorter than its period",
                f"got timeoutSeconds {timeout!r}, periodSeconds {ready.get('periodSeconds')!r}")
        res = spec.get("resources") or {}
        r.check(bool(res.get("requests")) and bool(res.get("limits")), f"{app.where}: resources requests and limits set",
                f"got {res!r}")
        pod_name = [v for v in app_variables(app) if v.get("name") == "pod_name"]
        r.check(bool(pod_name) and ((pod_name[0].get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") == "metadata.name",
                f"{app.where}: pod_name comes from the downward API (metadata.name)", "it does not")
    by_file = {app.path: app for app in m.spinapps}
    v2, v3 = by_file.get("kubernetes/client1-v2.yaml"), by_file.get("kubernetes/client1-v3.yaml")
    r.check(v2 is not None and v3 is not None, "kubernetes/client1-v2.yaml and client1-v3.yaml each define a SpinApp",
            f"SpinApps found in {sorted(by_file)}")
    if v2 is not None:
        r.check(not (v2.body.get("spec") or {}).get("runtimeConfig"), f"{v2.where}: no runtimeConfig (a store per pod)",
                "v2 must not configure a shared store")
    if v3 is not None:
        stores = ((v3.body.get("spec") or {}).get("runtimeConfig") or {}).get("keyValueStores") or []
        names = [s.get("name") for s in stores]
        r.check(names == ["default"], f"{v3.where}: runtimeConfig.keyValueStores configures the store 'default'",
                f"got {names}")
        declared = spin_kv_stores(m.spin)
        for s in stores:
            r.check(s.get("name") in declared, f"{v3.where}: store {s.get('name')!r} is in spin.toml key_value_stores",
                    f"spin.toml uses {sorted(declared)}")
            rule = STORE_TYPES.get(s.get("type"))
            if r.check(rule is not None, f"{v3.where}: store {s.get('name')!r} type {s.get('type')!r} is supported here",
                       f"expected one of {sorted(STORE_TYPES)}"):
                opts = [o.get("name") for o in s.get("options") or []]
                r.check(rule["required"] <= set(opts) and set(opts) <= rule["allowed"] and len(opts) == len(set(opts)),
                        f"{v3.where}: store {s.get('name')!r} options are {sorted(rule['required'])}",
                        f"got {opts}")
        if v2 is not None:
            a = copy.deepcopy(v2.body)
            b = copy.deepcopy(v3.body)
            (b.get("spec") or {}).pop("runtimeConfig", None)
            r.check(a == b, "client1-v3 SpinApp equals client1-v2 apart from runtimeConfig",
                    "they differ elsewhere (keep them the same so only the store differs)")


def check_session_store(m: Model, r: Report) -> None:
    """The Redis Deployment/Service, and that redis_url points at that Service."""
    deployments = {d.name: d for d in m.of_kind("Deployment")}
    services = {d.name: d for d in m.of_kind("Service")}
    for dep in deployments.values():
        spec = dep.body.get("spec") or {}
        sel = ((spec.get("selector") or {}).get("matchLabels")) or {}
        tpl = (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}
        r.check(bool(sel) and all(tpl.get(k) == v for k, v in sel.items()),
                f"{dep.where}: selector matches the pod template labels", f"selector {sel}, template labels {tpl}")
        for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []:
            image = str(c.get("image", ""))
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            r.check(bool(tag) and tag != "latest" or "@sha256:" in image,
                    f"{dep.where}: container {c.get('name')} image {image} is pinned", "use a fixed tag or digest")
    for svc in services.values():
        sel = (svc.body.get("spec") or {}).get("selector") or {}
        matches = [d for d in deployments.values()
                   if sel and all(((((d.body.get("spec") or {}).get("template") or {}).get("metadata") or {})
                                   .get("labels") or {}).get(k) == v for k, v in sel.items())]
        r.check(bool(matches), f"{svc.where}: selector {sel} matches a Deployment's pods", "it matches none")
    store = deployments.get("session-store")
    if r.check(store is not None, "Deployment session-store is defined", "missing (kubernetes/client1-v3.yaml)"):
        labels = ((((store.body.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}
        r.check(labels.get("app") == "session-store", f"{store.where}: pods are labelled app=session-store",
                f"labels {labels}")
    r.check("session-store" in services, "Service session-store is defined", "missing (kubernetes/client1-v3.yaml)")
    if store is not None:
        check_store_persistence(m, store, r)
        check_store_password(m, store, r)
    if m.readme is None:
        return
    for app in m.spinapps:
        for where, kind, name, key in key_refs(app):
            if not where.startswith("runtimeConfig.keyValueStores"):
                continue
            value = (m.readme.secrets if kind == "Secret" else m.readme.configmaps).get(name, {}).get(key)
            if value is None:
                continue  # reported by check_keys_created
            url = urlsplit(value)
            host = (url.hostname or "").split(".")[0]
            port = url.port or 6379
            svc = services.get(host)
            ok = url.scheme in ("redis", "rediss") and svc is not None and any(
                p.get("port") == port for p in (svc.body.get("spec") or {}).get("ports") or [])
            r.check(ok, f"{README}: {kind} {name}/{key} = {value} points at a defined Service and port",
                    f"no Service {host!r} with port {port} in the manifests")


def _redis_options(args: list[str]) -> dict[str, str]:
    """`--name value` pairs of a redis-server command line."""
    out: dict[str, str] = {}
    for i, a in enumerate(args):
        if a.startswith("--") and i + 1 < len(args):
            out[a[2:]] = args[i + 1]
    return out


def check_store_persistence(m: Model, store: Doc, r: Report) -> None:
    """Sessions survive a Redis restart: AOF on, in a directory that is a mounted
    PersistentVolumeClaim defined here (an emptyDir goes with the pod), and a
    Recreate strategy so that two Redis pods never share the volume."""
    spec = store.body.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or []
    redis = _redis_container(store)
    if not r.check(redis is not None, f"{store.where}: a container runs redis-server (or valkey-server) with explicit arguments",
                   "no container whose command or args name redis-server or valkey-server"):
        return
    opts = _redis_options([str(a) for a in (redis.get("command") or []) + (redis.get("args") or [])])
    r.check(opts.get("appendonly") == "yes", f"{store.where}: redis-server runs with --appendonly yes (AOF)",
            f"got --appendonly {opts.get('appendonly')!r}")
    data_dir = opts.get("dir")
    if not r.check(bool(data_dir), f"{store.where}: redis-server names its data directory (--dir)", "no --dir"):
        return
    mounts = {str(v.get("mountPath", "")).rstrip("/"): v.get("name") for v in redis.get("volumeMounts") or []}
    volume_name = mounts.get(data_dir.rstrip("/"))
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    claim = ((volumes.get(volume_name) or {}).get("persistentVolumeClaim") or {}).get("claimName")
    claims = {d.name for d in m.of_kind("PersistentVolumeClaim")}
    r.check(claim is not None and claim in claims,
            f"{store.where}: the data directory {data_dir} is a PersistentVolumeClaim defined in the manifests",
            f"volume {volume_name!r} is {volumes.get(volume_name)!r}; claims defined: {sorted(claims)}")
    r.check(((spec.get("strategy") or {}).get("type")) == "Recreate",
            f"{store.where}: strategy Recreate (one Redis pod at a time on the volume)",
            f"got {spec.get('strategy')!r}")


def _redis_container(store: Doc) -> dict | None:
    return next((c for c in pod_containers(store)
                 if REDIS_SERVERS & {str(a) for a in (c.get("command") or []) + (c.get("args") or [])}), None)


def check_store_password(m: Model, store: Doc, r: Report) -> None:
    """Redis requires a password that comes from a Secret, and the url every SpinApp's
    store reads (from a Secret as well) carries that same password: both are created
    by the README from one value."""
    redis = _redis_container(store)
    if redis is None:
        return  # reported by check_store_persistence
    opts = _redis_options([str(a) for a in (redis.get("command") or []) + (redis.get("args") or [])])
    given = opts.get("requirepass")
    if not r.check(bool(given), f"{store.where}: redis-server requires a password (--requirepass)",
                   "without one every pod in the cluster can read and change the sessions"):
        return
    var = re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", given)
    if not r.check(var is not None, f"{store.where}: --requirepass is an environment variable, $(NAME)",
                   f"got {given!r}: the password would sit in the manifest"):
        return
    env = {e.get("name"): e for e in redis.get("env") or [] if isinstance(e, dict)}
    ref = ((env.get(var.group(1)) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if not r.check(bool(ref.get("name")) and bool(ref.get("key")),
                   f"{store.where}: {var.group(1)} comes from a Secret (secretKeyRef)",
                   f"env {var.group(1)} is {env.get(var.group(1))!r}"):
        return
    secret, key = ref["name"], ref["key"]
    password = (m.readme.secrets.get(secret) or {}).get(key) if m.readme else None
    for app in m.spinapps:
        for s in ((app.body.get("spec") or {}).get("runtimeConfig") or {}).get("keyValueStores") or []:
            if s.get("type") != "redis":
                continue
            for opt in s.get("options") or []:
                if opt.get("name") != "url":
                    continue
                vf = opt.get("valueFrom") or {}
                sref = vf.get("secretKeyRef") or {}
                if not r.check(bool(sref), f"{app.where}: store {s.get('name')!r} url comes from a Secret (it holds the Redis password)",
                               "use valueFrom.secretKeyRef, not a literal value or a ConfigMap"):
                    continue
                url = (m.readme.secrets.get(sref.get("name")) or {}).get(sref.get("key")) if m.readme else None
                if url is None or password is None:
                    continue  # missing keys are reported by check_keys_created
                got = urlsplit(url).password
                r.check(got == password,
                        f"{README}: Secret {sref.get('name')}/{sref.get('key')} carries the password Redis requires "
                        f"(Secret {secret}/{key})",
                        f"the url has password {got!r}, Redis is given {password!r}")


def check_autoscaling(m: Model, r: Report) -> None:
    """HorizontalPodAutoscalers scale the Deployment spin-operator creates for a SpinApp
    (named after it) with enableAutoscaling, in the same file; such a SpinApp sets no
    replicas and requests CPU; the autoscaling variant equals v3 otherwise."""
    apps_by_file: dict[str, list[Doc]] = {}
    for app in m.spinapps:
        apps_by_file.setdefault(app.path, []).append(app)
    targeted: set[tuple[str, str]] = set()
    for hpa in m.of_kind("HorizontalPodAutoscaler"):
        spec = hpa.body.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        name = ref.get("name")
        r.check(ref.get("apiVersion") == "apps/v1" and ref.get("kind") == "Deployment",
                f"{hpa.where}: scales a Deployment (apps/v1)",
                f"got {ref.get('apiVersion')} {ref.get('kind')}; a SpinApp has no scale subresource, "
                "the Deployment spin-operator creates for it does")
        same = [a for a in apps_by_file.get(hpa.path, []) if a.name == name]
        if not r.check(bool(same), f"{hpa.where}: targets the Deployment of a SpinApp in {hpa.path}",
                       f"no SpinApp {name!r} in {hpa.path} (spin-operator names the Deployment after the SpinApp)"):
            continue
        app = same[0]
        targeted.add((app.path, app.name))
        r.check((app.body.get("spec") or {}).get("enableAutoscaling") is True,
                f"{hpa.where}: SpinApp {name} has enableAutoscaling: true",
                "without it the operator sets the Deployment's replicas to spec.replicas at every reconcile, "
                "undoing the HPA")
        metrics = spec.get("metrics") or []
        r.check(any(x.get("type") == "Resource" and (x.get("resource") or {}).get("name") == "cpu" for x in metrics),
                f"{hpa.where}: scales on CPU (a Resource metric cpu)", f"metrics: {metrics}")
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas")
        r.check(isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi,
                f"{hpa.where}: 1 <= minReplicas <= maxReplicas", f"minReplicas {lo!r}, maxReplicas {hi!r}")
    for app in m.spinapps:
        spec = app.body.get("spec") or {}
        if not spec.get("enableAutoscaling"):
            continue
        r.check("replicas" not in spec, f"{app.where}: enableAutoscaling without replicas",
                f"replicas: {spec.get('replicas')!r}; the CRD: replicas cannot be defined if autoscaling is enabled")
        cpu = ((spec.get("resources") or {}).get("requests") or {}).get("cpu")
        r.check(bool(cpu), f"{app.where}: resources.requests.cpu is set (CPU utilization is a share of it)",
                "no CPU request: the HPA cannot compute a CPU utilization")
        r.check((app.path, app.name) in targeted, f"{app.where}: an HPA in {app.path} scales its Deployment",
                "enableAutoscaling with no autoscaler leaves the replica count to nobody")
    by_file = {app.path: app for app in m.spinapps}
    v3, auto = by_file.get(V3_FILE), by_file.get(AUTOSCALING_FILE)
    if r.check(auto is not None, f"{AUTOSCALING_FILE} defines a SpinApp", f"SpinApps found in {sorted(by_file)}") \
            and v3 is not None:
        a, b = copy.deepcopy(v3.body), copy.deepcopy(auto.body)
        (a.get("spec") or {}).pop("replicas", None)
        (b.get("spec") or {}).pop("enableAutoscaling", None)
        r.check(a == b, f"{AUTOSCALING_FILE}: SpinApp equals client1-v3's apart from replicas and enableAutoscaling",
                "they differ elsewhere (keep them the same so only the scaling differs)")


def check_kind_cluster(m: Model, r: Report) -> None:
    """The kind cluster config registers containerd-shim-spin under the RuntimeClass
    handler and publishes the ingress port where BASE_URL expects it."""
    handlers = sorted({str(rc.body.get("handler")) for rc in m.of_kind("RuntimeClass")})
    base = urlsplit((m.readme.env.get("BASE_URL") if m.readme else None) or "")
    for doc in (d for d in m.docs if is_kind_config(d)):
        runtimes: dict[str, Any] = {}
        for i, patch in enumerate(doc.body.get("containerdConfigPatches") or []):
            try:
                cfg = tomllib.loads(patch)
            except tomllib.TOMLDecodeError as exc:
                r.fail(f"{doc.where}: containerdConfigPatches[{i}] is not TOML: {exc}")
                continue
            plugins = cfg.get("plugins") or {}
            for plugin in ("io.containerd.cri.v1.runtime", "io.containerd.grpc.v1.cri"):
                runtimes.update(((plugins.get(plugin) or {}).get("containerd") or {}).get("runtimes") or {})
        for h in handlers:
            r.check((runtimes.get(h) or {}).get("runtime_type") == SPIN_RUNTIME_TYPE,
                    f"{doc.where}: containerd runtime {h!r} (the RuntimeClass handler) is {SPIN_RUNTIME_TYPE}",
                    f"runtimes configured: {sorted(runtimes) or 'none'}")
        if base.port:
            mapped = [(pm.get("hostPort"), pm.get("containerPort"))
                      for n in doc.body.get("nodes") or [] if n.get("role") == "control-plane"
                      for pm in n.get("extraPortMappings") or []]
            r.check((base.port, 80) in mapped,
                    f"{doc.where}: the control-plane node publishes port 80 (the ingress) on {base.port}, BASE_URL's port",
                    f"port mappings (host, container): {mapped}")


def check_node_images(m: Model, r: Report) -> None:
    """`k3d cluster create` and `kind create cluster` in the README use the shim's
    node image for that tool, and each such image is a row of the README's shim table
    that names the Spin it carries."""
    if m.readme is None:
        return
    rows = [line for line in (m.repo / README).read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    used: set[str] = set()
    for c in m.readme.commands:
        t = c.tokens
        if t[:3] not in (["k3d", "cluster", "create"], ["kind", "create", "cluster"]):
            continue
        shown = " ".join(t)
        images = [t[i + 1] for i, x in enumerate(t[:-1]) if x == "--image"] + \
                 [x.split("=", 1)[1] for x in t if x.startswith("--image=")]
        if not r.check(len(images) == 1, f"{README}: `{shown}` names its node image (--image)", f"got {images}"):
            continue
        match = SHIM_IMAGE.match(images[0])
        r.check(match is not None and match.group(1) == t[0],
                f"{README}: `{shown}` uses the containerd-shim-spin {t[0]} node image",
                f"{images[0]!r} is not ghcr.io/spinframework/containerd-shim-spin/{t[0]}:vX.Y.Z")
        used.add(images[0])
    r.check(bool(used), f"{README}: creates a cluster with the shim (k3d or kind)", "no `k3d cluster create` or `kind create cluster`")
    for image in sorted(used):
        row = next((x for x in rows if f"`{image}`" in x), None)
        version = SHIM_IMAGE.match(image).group(2) if SHIM_IMAGE.match(image) else "?"
        r.check(row is not None and f"`{version}`" in row and re.search(r"Spin \d+\.\d+\.\d+", row) is not None,
                f"{README}: the shim table has a row for {image} with its shim version and the Spin it carries",
                f"row: {row!r}")
    for row in rows:
        for image in re.findall(r"`(ghcr\.io/spinframework/containerd-shim-spin/[^`]+)`", row):
            r.check(image in used, f"{README}: node image {image} in the shim table is used by a command",
                    "no `k3d cluster create`/`kind create cluster` uses it")


def _patch_merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _patch_merge(out.get(k), v)
    return out


def pushed_images(m: Model) -> tuple[list[str], list[str]]:
    push, scaffold = [], []
    if m.readme is None:
        return push, scaffold
    for c in m.readme.commands:
        t = c.tokens
        if t[:3] == ["spin", "registry", "push"]:
            args, i = [], 3
            while i < len(t):
                if t[i] in ("-f", "--from", "--cache-dir", "--annotation", "--compose", "--profile"):
                    i += 2
                    continue
                if not t[i].startswith("-"):
                    args.append(t[i])
                i += 1
            push += args[-1:]
        if t[:3] == ["spin", "kube", "scaffold"]:
            for i, tok in enumerate(t):
                if tok in ("--from", "-f") and i + 1 < len(t):
                    scaffold.append(t[i + 1])
                elif tok.startswith("--from="):
                    scaffold.append(tok.split("=", 1)[1])
    return push, scaffold


def check_image(m: Model, r: Report) -> None:
    images = {app.path: (app.body.get("spec") or {}).get("image") for app in m.spinapps}
    distinct = set(images.values())
    if not r.check(len(distinct) == 1, "all SpinApps use the same image reference", f"got {images}"):
        return
    image = distinct.pop()
    push, scaffold = pushed_images(m)
    if not r.check(len(push) == 1, f"{README}: exactly one `spin registry push <reference>`", f"found {push}"):
        return
    pushed = push[0]
    for ref in scaffold:
        r.check(ref == pushed, f"{README}: `spin kube scaffold --from` uses the pushed reference",
                f"scaffolds {ref!r}, pushes {pushed!r}")
    if m.readme is None:
        return
    # What reaches the cluster: the manifest, possibly rewritten by `sed "s|A|B|" FILE | kubectl apply -f -`.
    applied = []
    for c in m.readme.commands:
        if c.tokens[:2] != ["kubectl", "apply"]:
            continue
        _, flags = kubectl_parts(c.tokens)
        for f in flags.get("-f", []) + flags.get("--filename", []):
            if f == "-":
                applied += _piped_sources(c, r)
            else:
                applied.append((f, None))
    spinapp_files = {app.path for app in m.spinapps}
    for path, sub in applied:
        if Path(path).as_posix() not in spinapp_files:
            continue
        effective = image
        if sub is not None:
            a, b = sub
            r.check(a in image, f"{README}: sed applied to {path} rewrites part of spec.image",
                    f"{a!r} does not occur in {image!r}")
            effective = image.replace(a, b)
        r.check(effective == pushed, f"{README}: {path} is applied with the pushed image {pushed}",
                f"the cluster would pull {effective!r}")
    applied_apps = {Path(p).as_posix() for p, _ in applied} & spinapp_files
    r.check(applied_apps == spinapp_files, f"{README}: applies every SpinApp manifest",
            f"not applied: {sorted(spinapp_files - applied_apps)}")


def _piped_sources(c: Command, r: Report) -> list[tuple[str, tuple[str, str] | None]]:
    idx = next(i for i, t in enumerate(c.pipeline) if t is c.tokens)
    if idx == 0:
        r.fail(f"{README}: `{' '.join(c.tokens)}` reads stdin but nothing is piped into it")
        return []
    src = c.pipeline[idx - 1]
    if src[0] == "cat" and len(src) == 2:
        return [(src[1], None)]
    if src[0] == "sed" and len(src) == 3:
        m = re.match(r"^s(.)(.*?)\1(.*?)\1g?$", src[1])
        if m:
            return [(src[2], (m.group(2), m.group(3)))]
    r.fail(f"{README}: cannot tell what `{' '.join(src)}` pipes into kubectl apply "
           "(use `cat FILE` or `sed \"s|A|B|\" FILE`)")
    return []


def check_readme_commands(m: Model, r: Report) -> None:
    if m.readme is None:
        return
    defined = m.defined()
    labels = m.labels()
    repo = m.repo
    used_files: set[str] = set()
    spinapp = m.crds.get("SpinApp")
    for c in m.readme.commands:
        t = c.tokens
        shown = " ".join(t)
        # Every repository file a command names must exist.
        for tok in t:
            if re.match(r"^[\w./-]+\.(ya?ml|toml|md)$", tok) and not tok.startswith(("/", "http")):
                if r.check((repo / tok).exists(), f"{README}: `{shown}` names existing file {tok}", "no such file"):
                    used_files.add(Path(tok).as_posix())
        if t[0] != "kubectl":
            continue
        positional, flags = kubectl_parts(t)
        for f in flags.get("-f", []) + flags.get("--filename", []) + flags.get("-k", []):
            if f == "-" or re.match(r"^https?://", f):
                continue
            if r.check((repo / f).exists(), f"{README}: `{shown}`: -f {f} exists", "no such file or directory"):
                used_files.add(Path(f).as_posix())
        ns = (flags.get("-n") or flags.get("--namespace") or [None])[-1]
        if ns is not None:
            r.check(ns in INFRA_NAMESPACES, f"{README}: `{shown}` addresses namespace {ns}",
                    f"only {sorted(INFRA_NAMESPACES)} may be named; the app lives in the current namespace")
            continue
        if not positional:
            continue
        verb, args = positional[0], positional[1:]
        if verb == "rollout" and args:
            args = args[1:]
        if verb == "create":
            continue
        for sel in flags.get("-l", []) + flags.get("--selector", []):
            for part in sel.split(","):
                k, eq, v = part.partition("=")
                if eq:
                    r.check((k, v) in labels, f"{README}: `{shown}`: label {k}={v} is set on a defined object",
                            "no manifest (or the operator, for SpinApp pods) sets this label")
        if verb not in KUBECTL_RESOURCE_VERBS or not args:
            continue
        refs: list[tuple[str, str]] = []
        if "/" in args[0]:
            for a in args:
                kind, _, name = a.partition("/")
                if name:
                    refs.append((kind, name))
                elif verb in ("port-forward",):
                    break
        else:
            kind_word = args[0]
            names = [a for a in args[1:] if not re.match(r"^\d+(:\d+)?$", a) and "__SUBST" not in a]
            if verb in ("logs", "exec", "port-forward"):
                names = []  # `kubectl logs POD`: the first word is a pod name, not a kind
            refs += [(kind_word, n) for n in names]
        for kind_word, name in refs:
            k = kind_word.lower().split(".")[0]
            if k in UNCHECKED_KINDS:
                continue
            kind = KIND_ALIASES.get(k)
            if not r.check(kind is not None, f"{README}: `{shown}` names a known resource type",
                           f"{kind_word!r} is not one this check knows"):
                continue
            r.check(name in defined.get(kind, set()), f"{README}: `{shown}`: {kind} {name} is defined",
                    f"defined {kind}s: {sorted(defined.get(kind, set())) or 'none'}")
        if verb == "scale" and refs and KIND_ALIASES.get(refs[0][0].lower().split(".")[0]) == "SpinApp":
            r.check(spinapp is not None and spinapp.has_scale, f"{README}: `{shown}` scales a SpinApp",
                    "the SpinApp CRD has no scale subresource; use kubectl patch spinapp NAME --type merge")
        if verb == "patch" and refs:
            kind = KIND_ALIASES.get(refs[0][0].lower().split(".")[0])
            patch = (flags.get("-p") or flags.get("--patch") or [None])[-1]
            ptype = (flags.get("--type") or ["strategic"])[-1]
            if kind == "SpinApp" and patch is not None:
                r.check(ptype == "merge", f"{README}: `{shown}` uses a merge patch",
                        "custom resources do not support strategic merge patches")
                try:
                    body = json.loads(patch)
                except json.JSONDecodeError as exc:
                    r.fail(f"{README}: `{shown}`: patch is not JSON: {exc}")
                    continue
                for app in m.spinapps:
                    if app.name != refs[0][1]:
                        continue
                    errors = validate_crd_object(_patch_merge(app.body, body), m.crds, m.k8s_version)
                    r.check(not errors, f"{README}: `{shown}` on {app.path} still validates", "; ".join(errors))
    for d in sorted({doc.path for doc in m.docs}):
        r.check(d in used_files, f"{README}: uses {d}", "no command in the README applies or names it")


# --------------------------------------------------------------------------- runtime config

def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\t\n\f\r":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[ch])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(k: str) -> str:
    return k if re.match(r"^[A-Za-z0-9_-]+$", k) else _toml_str(k)


def render_runtime_config(m: Model, redis_url: str | None) -> str:
    """The runtime-config.toml spin-operator renders for the SpinApp with runtimeConfig.

    Mirrors the operator's runtimeconfig builder: an env variables provider with prefix
    SPIN_VARIABLE_, then one [key_value_store.<name>] table per store holding `type`
    and the options, each option a literal value or the referenced ConfigMap/Secret key
    (here: the value kubernetes/README.md creates). --redis-url replaces the `url` of
    redis stores."""
    apps = [a for a in m.spinapps if (a.body.get("spec") or {}).get("runtimeConfig")]
    if not apps:
        raise SetupError("expected a SpinApp with spec.runtimeConfig, found none")
    configs = {json.dumps(a.body["spec"]["runtimeConfig"], sort_keys=True) for a in apps}
    if len(configs) != 1:
        raise SetupError("the SpinApps with spec.runtimeConfig (" + ", ".join(a.where for a in apps)
                         + ") configure different runtime configs")
    app = next((a for a in apps if a.path == V3_FILE), apps[0])
    rc = app.body["spec"]["runtimeConfig"]
    if rc.get("loadFromSecret"):
        raise SetupError(f"{app.where}: runtimeConfig.loadFromSecret: the operator renders nothing")
    lines = ["[[config_provider]]", 'type = "env"', 'prefix = "SPIN_VARIABLE_"']
    for section, table in (("keyValueStores", "key_value_store"), ("sqliteDatabases", "sqlite_database")):
        seen = set()
        for store in rc.get(section) or []:
            name = store["name"]
            if name in seen:
                raise SetupError(f"{app.where}: duplicate {section} entry {name!r}")
            seen.add(name)
            options = {"type": store["type"]}
            for opt in store.get("options") or []:
                if store["type"] == "redis" and opt["name"] == "url" and redis_url is not None:
                    options["url"] = redis_url  # replaced: the README's value need not be known
                else:
                    options[opt["name"]] = _option_value(m, app, opt)
            lines += ["", f"[{table}.{_toml_key(name)}]"]
            lines += [f"{_toml_key(k)} = {_toml_str(v)}" for k, v in sorted(options.items())]
    if rc.get("llmCompute"):
        raise SetupError(f"{app.where}: runtimeConfig.llmCompute is not rendered by this script")
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # must round-trip
    return text


def _option_value(m: Model, app: Doc, opt: dict) -> str:
    if opt.get("value"):
        return str(opt["value"])
    vf = opt.get("valueFrom") or {}
    for ref, kind, objs in (("configMapKeyRef", "ConfigMap", m.readme.configmaps if m.readme else {}),
                            ("secretKeyRef", "Secret", m.readme.secrets if m.readme else {})):
        if vf.get(ref):
            name, key = vf[ref].get("name", ""), vf[ref].get("key", "")
            value = objs.get(name, {}).get(key)
            if value is None:
                raise SetupError(f"{app.where}: option {opt['name']}: {README} creates no {kind} {name}/{key}")
            if _VAR.search(value):
                raise SetupError(f"{app.where}: option {opt['name']}: {kind} {name}/{key} = {value!r} "
                                 "depends on a shell variable; pass the value explicitly"
                                 + (" (--redis-url)" if opt["name"] == "url" else ""))
            return value
    return ""


# --------------------------------------------------------------------------- main

def build_model(repo: Path, schema_dir: Path, report: Report, k8s_version: str = K8S_VERSION_DEFAULT) -> Model:
    crds = load_crds(schema_dir)
    try:
        spin = tomllib.loads((repo / "spin.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SetupError(f"cannot read {repo / 'spin.toml'}: {exc}") from exc
    docs = load_manifests(repo, report)
    readme = parse_readme(repo, report)
    return Model(repo, docs, spin, crds, readme, k8s_version)


CHECKS: list[Callable[[Model, Report], None]] = [
    check_variables, check_keys_created, check_names, check_spinapp_shape,
    check_session_store, check_image, check_readme_commands, check_autoscaling, check_kind_cluster,
    check_node_images,
]


def run_checks(repo: Path, schema_dir: Path, k8s_version: str = K8S_VERSION_DEFAULT) -> tuple[Report, Model]:
    report = Report()
    model = build_model(repo, schema_dir, report, k8s_version)
    validate_docs(model.docs, model.crds, k8s_version, report)
    for check in CHECKS:
        check(model, report)
    return report, model


def default_schema_dir(repo: Path) -> Path:
    env = os.environ.get(SCHEMA_ENV)
    return Path(env) if env else (repo / ".." / "shared" / "schemas" / "spinkube").resolve()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, default=REPO_DEFAULT, help="repository root (default: this checkout)")
    p.add_argument("--schemas", type=Path, default=None,
                   help=f"directory with the SpinKube CRDs (default: ${SCHEMA_ENV} or <repo>/../shared/schemas/spinkube)")
    p.add_argument("--k8s-version", default=K8S_VERSION_DEFAULT,
                   help=f"Kubernetes version of the bundled schemas to validate against (default {K8S_VERSION_DEFAULT})")
    p.add_argument("--emit-runtime-config", type=Path, metavar="PATH",
                   help="also write the runtime-config.toml spin-operator renders for the v3 SpinApp")
    p.add_argument("--redis-url", help="url for redis stores in the emitted runtime config "
                                       "(default: the value kubernetes/README.md puts in the ConfigMap)")
    p.add_argument("-v", "--verbose", action="store_true", help="list passed checks too")
    args = p.parse_args(argv)
    if args.redis_url is not None and args.emit_runtime_config is None:
        p.error("--redis-url only makes sense with --emit-runtime-config")
    repo = args.repo.resolve()
    schema_dir = args.schemas.resolve() if args.schemas else default_schema_dir(repo)
    try:
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
                                     args.k8s_version, strict=True)
    except Exception as exc:  # VersionNotSupportedError has no useful str()
        print(f"check.py: kubernetes-validate {kubernetes_validate.__version__} cannot validate "
              f"Kubernetes {args.k8s_version}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    try:
        report, model = run_checks(repo, schema_dir, args.k8s_version)
    except SetupError as exc:
        print(f"check.py: {exc}", file=sys.stderr)
        return 2
    if args.verbose:
        for line in report.passed:
            print(f"ok    {line}")
    for line in report.failed:
        print(f"FAIL  {line}")
    status = 1 if report.failed else 0
    if args.emit_runtime_config is not None:
        if report.failed:
            print(f"not writing {args.emit_runtime_config}: checks failed", file=sys.stderr)
        else:
            try:
                text = render_runtime_config(model, args.redis_url)
            except SetupError as exc:
                print(f"check.py: {exc}", file=sys.stderr)
                return 2
            args.emit_runtime_config.parent.mkdir(parents=True, exist_ok=True)
            args.emit_runtime_config.write_text(text, encoding="utf-8")
            print(f"wrote {args.emit_runtime_config}")
    print(f"manifests: {len(report.passed)} passed, {len(report.failed)} failed")
    return status


if __name__ == "__main__":
    sys.exit(main())
