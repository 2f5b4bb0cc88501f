"""The event catalogue (AsyncAPI 3.0) generated from published event registries.

The registries are the single source of truth: every payload's JSON Schema comes from its pydantic model
(private fields left out: they never travel), so the published file cannot drift from the code. Each
registry is one channel (its ``topic`` and ``description``). Juwei's registries are its contracts
(``composition.catalogue``); a test regenerates the file and compares it with ``asyncapi.yaml``, and
``juwei catalogue`` rewrites it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from juwei.events import EventRegistry

_ENVELOPE: dict[str, Any] = {
    "CloudEventHeaders": {
        "type": "object",
        "description": "CloudEvents 1.0 binary content mode: the attributes as Kafka headers.",
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_subject",
            "ce_time",
            "ce_compound",
            "ce_streamversion",
        ],
        "properties": {
            "ce_specversion": {"type": "string", "const": "1.0"},
            "ce_id": {"type": "string", "format": "uuid", "description": "Event id; consumers deduplicate on it."},
            "ce_source": {"type": "string", "pattern": "^/juwei/[a-z][a-z0-9_]*$"},
            "ce_type": {"type": "string", "pattern": r"^juwei\.[a-z_]+\.[A-Za-z]+\.v[1-9][0-9]*$"},
            "ce_subject": {"type": "string", "description": "The stream the event belongs to."},
            "ce_time": {"type": "string", "format": "date-time"},
            "ce_compound": {"type": "string", "description": "The compound the stream belongs to."},
            "ce_streamversion": {"type": "string", "pattern": "^[1-9][0-9]*$"},
            "ce_position": {
                "type": "string",
                "pattern": "^[1-9][0-9]*$",
                "description": "Global position in the producing service's log.",
            },
            "ce_building": {"type": "string", "description": "The building (district-wide id) it concerns."},
            "ce_traceparent": {"type": "string", "description": "W3C trace context."},
            "content-type": {"type": "string", "const": "application/json"},
        },
    },
    "StructuredCloudEvent": {
        "type": "object",
        "description": "The same event in structured mode, as the feed (GET /events, /events/stream) returns it.",
        "required": ["specversion", "id", "source", "type", "subject", "time", "compound", "streamversion", "data"],
        "properties": {
            "specversion": {"type": "string", "const": "1.0"},
            "id": {"type": "string"},
            "source": {"type": "string"},
            "type": {"type": "string"},
            "subject": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"type": "string"},
            "compound": {"type": "string"},
            "streamversion": {"type": "integer", "minimum": 1},
            "position": {"type": "integer", "minimum": 1},
            "building": {"type": "string"},
            "traceparent": {"type": "string"},
            "data": {"type": "object"},
        },
    },
    "DeadLetterHeaders": {
        "type": "object",
        "description": "Added to the original record's headers on `<topic>.dlq`.",
        "properties": {
            name: {"type": "string"}
            for name in (
                "juwei_error",
                "juwei_error_type",
                "juwei_original_topic",
                "juwei_original_partition",
                "juwei_original_offset",
                "juwei_consumer_group",
            )
        },
    },
}

# Every payload field's class (identity, health, location, none): see the README's privacy section.
SENSITIVITY = "x-juwei-sensitivity"


def _message_name(type_name: str) -> str:
    parts = type_name.split(".")  # juwei.<service>.<Event>.v<N>
    return f"{parts[1]}.{parts[2]}.{parts[3]}"


def build(registries: Iterable[EventRegistry]) -> dict[str, Any]:
    """The AsyncAPI document of these published registries, one channel (and its dead letters) each."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = dict(_ENVELOPE)
    for registry in registries:
        if not registry.topic:
            raise ValueError("only a published registry (one that names its topic) is a channel")
        service = registry.topic.split(".", 1)[1]
        refs: dict[str, Any] = {}
        for type_name, cls in sorted(registry.classes.items()):
            name = _message_name(type_name)
            classes = registry.field_classes(cls)
            schema = cls.model_json_schema(mode="serialization")
            for private in cls.private_fields:
                schema.get("properties", {}).pop(private, None)
                if private in schema.get("required", []):
                    schema["required"].remove(private)
            for field_name, field_schema in schema.get("properties", {}).items():
                field_schema[SENSITIVITY] = classes[field_name]
            for nested_name, nested in schema.pop("$defs", {}).items():
                schemas[nested_name] = nested
            schemas[name] = _relink(schema)
            extensions: dict[str, Any] = {
                SENSITIVITY: {field: classes[field] for field in cls.model_fields if field not in cls.private_fields},
            }
            kept = {field: classes[field] for field in cls.model_fields if field in cls.private_fields}
            if kept:
                extensions["x-juwei-kept-in-service"] = kept
            if cls.sealed_fields:
                extensions["x-juwei-sealed"] = {
                    field: {"subject": spec.subject, "fields": list(spec.fields)}
                    for field, spec in cls.sealed_fields.items()
                }
            extensions["x-juwei-audience"] = sorted(cls.audience)
            messages[name] = {
                "name": type_name,
                "title": cls.__name__,
                "summary": (cls.__doc__ or cls.__name__).strip().splitlines()[0],
                **extensions,
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
                "payload": {"$ref": f"#/components/schemas/{name}"},
                "bindings": {
                    "kafka": {
                        "key": {
                            "type": "string",
                            "description": "The building when the event concerns one, else the stream id.",
                        }
                    }
                },
            }
            refs[cls.__name__] = {"$ref": f"#/components/messages/{name}"}
        channels[service] = {
            "address": registry.topic,
            "description": registry.description,
            "messages": refs,
        }
        channels[f"{service}DeadLetters"] = {
            "address": f"{registry.topic}.dlq",
            "description": "Records a consumer could not handle, with the DeadLetterHeaders added.",
            "messages": {},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Juwei events",
            "version": "0.1.0",
            "description": (
                "Every event of every Juwei service, as it travels on Kafka (CloudEvents 1.0, binary content mode: "
                "attributes in `ce_*` headers, the JSON payload as the record value) and out of each service's feed "
                "(`GET /events`, `GET /events/stream`, structured mode). Record key: the building the event concerns, "
                "otherwise the stream id. Payloads carry ids, never names, phone numbers or ID numbers. Every payload "
                "field is classed (`x-juwei-sensitivity`: identity, health, location, none); health data travels only "
                "sealed per data subject (`x-juwei-sealed`: services granted health are handed the key of each record "
                "in its `juwei_sealed_key` header) or stays in the producing service (`x-juwei-kept-in-service`), and "
                "the feed leaves it out for readers without a health grant. `x-juwei-audience` names the roles besides "
                "staff that read a message in the feed. Generated from the services' event registries by "
                "`juwei catalogue`: do not edit by hand."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The local KRaft broker started by `juwei run`.",
            }
        },
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas},
    }


def _relink(schema: Any) -> Any:
    """pydantic points nested models at #/$defs; in AsyncAPI they live in components/schemas."""
    if isinstance(schema, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _relink(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_relink(v) for v in schema]
    return schema


def render(registries: Iterable[EventRegistry]) -> str:
    return yaml.safe_dump(build(registries), sort_keys=False, allow_unicode=True, width=120)
