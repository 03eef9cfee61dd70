"""The deployments' forms: what the server refuses when a run is created."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
import yaml
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import ValidationError, validate

from driftloop.configs.settings import PROJECT_ROOT, ConfigError
from driftloop.flows.params import DEFAULT_TIMEOUTS, flow_timeout


def _deployments() -> list[tuple[str, Any]]:
    spec = yaml.safe_load((PROJECT_ROOT / "deployments" / "prefect.yaml").read_text())
    found = []
    for deployment in spec["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        module = importlib.import_module("driftloop." + path.removesuffix(".py").replace("/", "."))
        found.append((deployment["name"], getattr(module, name)))
    return found


def _date_fields(schema: dict[str, Any]) -> list[str]:
    def is_date(prop: dict[str, Any]) -> bool:
        options = prop.get("anyOf", [prop])
        return any(o.get("format") == "date" for o in options)

    return [name for name, prop in schema["properties"].items() if is_date(prop)]


DEPLOYMENTS = _deployments()


@pytest.mark.parametrize(("name", "flow"), DEPLOYMENTS, ids=[name for name, _ in DEPLOYMENTS])
def test_an_impossible_day_is_refused_when_the_run_is_created(name: str, flow: Any) -> None:
    schema = parameter_schema(flow.fn).model_dump_for_openapi()
    for field in _date_fields(schema):
        validate({field: "2026-11-05"}, schema, raise_on_error=True, ignore_required=True)
        with pytest.raises(ValidationError, match=field):
            validate({field: "2026-13-45"}, schema, raise_on_error=True, ignore_required=True)


def _schema(flow: Any) -> dict[str, Any]:
    return parameter_schema(flow.fn).model_dump_for_openapi()


def _texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize(("name", "flow"), DEPLOYMENTS, ids=[name for name, _ in DEPLOYMENTS])
def test_the_form_reads_as_written(name: str, flow: Any) -> None:
    """The UI renders descriptions as HTML: text in angle brackets would vanish."""
    spec = yaml.safe_load((PROJECT_ROOT / "deployments" / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == name]
    schema = _schema(flow)
    descriptions = [p.get("description", "") for p in schema["properties"].values()]
    for text in [deployment["description"], *descriptions]:
        assert not re.search(r"<[^>]*>", text), f"{name}: {text!r}"
    assert all(descriptions), f"{name}: every parameter has a description"
    assert deployment.get("enforce_parameter_schema") is True, name
    # the deployment's own defaults pass its schema (else `prefect deploy` is refused: 422)
    validate(deployment.get("parameters") or {}, schema, raise_on_error=True, ignore_required=True)
    assert flow.timeout_seconds == DEFAULT_TIMEOUTS[name], name


@pytest.mark.parametrize(("name", "flow"), DEPLOYMENTS, ids=[name for name, _ in DEPLOYMENTS])
def test_profile_is_a_choice_and_free_json_has_examples(name: str, flow: Any) -> None:
    properties = _schema(flow)["properties"]
    if "profile" in properties:
        (choice,) = [o for o in properties["profile"]["anyOf"] if o.get("enum")]
        assert choice["enum"] == ["local", "prod"], "the files in configs/ but base.yaml"
        validate({"profile": "prod"}, _schema(flow), raise_on_error=True, ignore_required=True)
        with pytest.raises(ValidationError, match="profile"):
            validate({"profile": "staging"}, _schema(flow), True, ignore_required=True)
    for field in ("overrides", "hyperparameters"):
        if field in properties:
            prop = properties[field]
            # one JSON field, no "None" branch (the form said "Property is type None")
            assert "anyOf" not in prop and prop["type"] == "object", (field, prop)
            assert prop["examples"] and prop["default"] == {}, field
            validate({field: {"a.b": 1}}, _schema(flow), raise_on_error=True, ignore_required=True)
            with pytest.raises(ValidationError, match=field):
                validate({field: "a.b=1"}, _schema(flow), True, ignore_required=True)


def test_python_callers_may_still_pass_no_overrides() -> None:
    """A parent flow hands its own `overrides=None` to the runs it starts (Prefect checks a
    sub-flow's parameters against the signature, not the deployment's schema)."""
    from driftloop.flows.train import train

    checked = train.validate_parameters(
        {"window_start": "2026-11-01", "window_end": "2026-11-03", "overrides": None}
    )
    assert checked["overrides"] is None and checked["hyperparameters"] is None


def test_trigger_is_recorded_by_the_system_not_typed() -> None:
    from driftloop.flows.train import train

    assert "trigger" not in _schema(train)["properties"]
    assert "trigger" in train.fn.__code__.co_varnames, "the flow still takes it"
    spec = yaml.safe_load((PROJECT_ROOT / "deployments" / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == "train"]
    assert "trigger" not in deployment["parameters"]
    (trigger,) = deployment["triggers"]
    assert trigger["parameters"]["trigger"].startswith("drift:"), "the event sets it"


def test_schedules_name_their_time_zone_and_keep_their_id() -> None:
    spec = yaml.safe_load((PROJECT_ROOT / "deployments" / "prefect.yaml").read_text())
    schedules = [s for d in spec["deployments"] for s in d.get("schedules") or []]
    assert schedules
    for schedule in schedules:
        assert schedule["timezone"] == "UTC"
        assert schedule["anchor_date"].endswith("+00:00"), "the UI names the zone with it"
        assert schedule["slug"], "updated in place by a second deploy"
        assert "active" not in schedule, "a deploy must not resume a paused schedule"


def test_timeouts_come_from_the_environment() -> None:
    assert flow_timeout("train", {}) == DEFAULT_TIMEOUTS["train"]
    assert flow_timeout("train", {"DRIFTLOOP_TIMEOUT_TRAIN": "90"}) == 90
    assert flow_timeout("train", {"DRIFTLOOP_TIMEOUT_TRAIN": "0"}) is None
    with pytest.raises(ConfigError, match="DRIFTLOOP_TIMEOUT_TRAIN='an hour'"):
        flow_timeout("train", {"DRIFTLOOP_TIMEOUT_TRAIN": "an hour"})


@pytest.mark.parametrize(("name", "flow"), DEPLOYMENTS, ids=[name for name, _ in DEPLOYMENTS])
def test_optional_fields_are_plain_fields_in_the_form(name: str, flow: Any) -> None:
    """What `make up` writes over Prefect's schema after each deploy: no "None" type to pick
    ('Property is type "None"') but for the booleans whose third choice is the config's."""
    from driftloop.deployments.automations import form_schema

    schema = form_schema(_schema(flow))
    for field, prop in schema["properties"].items():
        nulls = [o for o in prop.get("anyOf", []) if o.get("type") == "null"]
        if nulls:
            (typed,) = [o for o in prop["anyOf"] if o.get("type") != "null"]
            assert typed["type"] == "boolean", (name, field, prop)
    spec = yaml.safe_load((PROJECT_ROOT / "deployments" / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == name]
    validate(deployment.get("parameters") or {}, schema, raise_on_error=True, ignore_required=True)
    validate({}, schema, raise_on_error=True, ignore_required=True)  # left out: the default
    plain = [f for f, p in schema["properties"].items() if "anyOf" not in p]
    assert all(schema["properties"][f].get("default", 0) is not None for f in plain), name
    if "profile" in schema["properties"]:
        assert schema["properties"]["profile"]["enum"] == ["local", "prod"]
        with pytest.raises(ValidationError, match="profile"):
            validate({"profile": "staging"}, schema, True, ignore_required=True)
    if "source" not in schema.get("required", []) and "source" in schema["properties"]:
        # an API caller's explicit null for an optional field still passes
        validate({"source": None}, schema, raise_on_error=True, ignore_required=True)
