"""The deployments' forms: what the server refuses when a run is created."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import ValidationError, validate

from driftloop.configs.settings import PROJECT_ROOT


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
