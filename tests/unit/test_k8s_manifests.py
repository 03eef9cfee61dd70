"""The Kubernetes files (deployments/k8s/) hold against the Kubernetes schema, so a data
engineer's `kubectl apply` and the work pool's Jobs are not the first place a typo shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deployments" / "k8s"
KUBERNETES_VERSION = "1.33.0"


def _render(value: Any, variables: dict[str, Any]) -> Any:
    """The job manifest as the worker sends it: each `{{ name }}` replaced by its default (the
    worker also turns the env mapping into a list and drops what is unset)."""
    if isinstance(value, dict):
        out = {k: _render(v, variables) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None}
    if isinstance(value, list):
        return [_render(v, variables) for v in value]
    if isinstance(value, str) and value.startswith("{{") and value.endswith("}}"):
        name = value.strip("{} ")
        if name == "env":
            return [{"name": k, "value": v} for k, v in variables[name].items()]
        return variables[name]
    if isinstance(value, str) and "{{" in value:
        for name, default in variables.items():
            value = value.replace("{{ " + name + " }}", str(default))
        return value
    return value


def _template() -> dict[str, Any]:
    return json.loads((K8S / "base-job-template.json").read_text())


def test_the_work_pool_template_renders_a_valid_job() -> None:
    from prefect.utilities.templating import find_placeholders

    template = _template()
    properties = template["variables"]["properties"]
    placeholders = {p.name for p in find_placeholders(template["job_configuration"])}
    assert placeholders <= set(properties), placeholders - set(properties)

    variables = {name: spec.get("default") for name, spec in properties.items()}
    variables.update(name="ingest-2026-11-01", env={"EXTRA": "1"}, labels={"team": "ml"})
    variables["command"] = ["prefect", "flow-run", "execute"]
    job = _render(template["job_configuration"]["job_manifest"], variables)
    assert kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)

    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert {"secretRef": {"name": "driftloop-s3"}} in container["envFrom"], "S3 keys: a Secret"
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_a_typo_in_the_job_manifest_is_caught() -> None:
    template = _template()
    properties = template["variables"]["properties"]
    variables = {name: spec.get("default") for name, spec in properties.items()}
    variables.update(name="x", env={}, labels={}, command=["prefect"])
    job = _render(template["job_configuration"]["job_manifest"], variables)
    job["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolicyy"):
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_the_worker_manifests_are_valid_and_keep_secrets_in_secrets() -> None:
    documents = [d for d in yaml.safe_load_all((K8S / "driftloop.yaml").read_text()) if d]
    kinds = [d["kind"] for d in documents]
    assert {"Deployment", "ConfigMap", "ServiceAccount", "Role", "RoleBinding"} <= set(kinds)
    assert "Secret" not in kinds, "secrets are created with kubectl, never committed"
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    (worker,) = [d for d in documents if d["kind"] == "Deployment"]
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]
    assert "secretKeyRef" in json.dumps(container["env"])
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    assert not any("SECRET" in key or "PASSWORD" in key for key in config["data"])
