"""The catalogue classes every payload field, and what is published follows from the class (plain Python).

- every field of every event of the four catalogues has a class: identity, health, location or none;
- no identity field is published (it is private: kept, sealed, in the owning service);
- a published health field is a sealed token (``sealed_fields``): health data travels only sealed, or not;
- the roles an event's ``audience`` names are roles, and the sealed fields name a subject that is published.
"""

from __future__ import annotations

import pytest

from composition.catalogue import registries
from contracts import roles as r
from juwei.events import SENSITIVITIES, DomainEvent, EventRegistry
from juwei.registration import suite

REGISTRIES: dict[str, EventRegistry] = {registry.topic.split(".")[1]: registry for registry in registries(suite())}
EVENTS = [(name, cls) for name, registry in REGISTRIES.items() for cls in registry.classes.values()]


@pytest.mark.parametrize(("service", "cls"), EVENTS, ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_every_field_is_classed_and_published_by_its_class(service: str, cls: type[DomainEvent]) -> None:
    classes = REGISTRIES[service].field_classes(cls)  # raises when a field has no class
    assert set(classes) == set(cls.model_fields) and set(classes.values()) <= set(SENSITIVITIES)
    published = {name for name in cls.model_fields if name not in cls.private_fields}
    assert not {name for name in published if classes[name] == "identity"}, "identity is never published"
    health = {name for name in published if classes[name] == "health"}
    assert health <= set(cls.sealed_fields), f"health published in clear: {sorted(health - set(cls.sealed_fields))}"
    for name, spec in cls.sealed_fields.items():
        assert spec.subject in published and set(spec.fields) <= cls.private_fields, name
        assert all(classes[field] == "health" for field in spec.fields)
    assert cls.audience <= set(r.ALL) - {r.DISTRICT_OPERATOR, r.COMMITTEE_STAFF, r.EXTERNAL_CONSUMER}


def test_an_unclassified_field_fails_here_and_is_withheld_by_the_feed() -> None:
    class Leaky(DomainEvent):
        event_type = "juwei.residents.Leaky"
        diagnosis: str

    registry = EventRegistry(vocabulary=REGISTRIES["residents"].vocabulary)
    with pytest.raises(TypeError, match="no sensitivity for diagnosis"):
        registry.field_classes(Leaky)
    assert registry.field_classes(Leaky, strict=False) == {"diagnosis": "identity"}  # fails closed: never shown


def test_the_health_flags_the_issue_names_are_health_and_never_published_in_clear() -> None:
    residents = REGISTRIES["residents"]
    for name in ("ResidentRegistered", "ResidentArrived", "ResidentNeedsChanged"):
        cls = residents.classes[f"juwei.residents.{name}.v2"]
        classes = residents.field_classes(cls)
        for flag in ("regular_medication", "bedridden", "pregnant", "mobility_impaired"):
            assert classes[flag] == "health" and flag in cls.private_fields
        assert "birth_year" not in cls.model_fields or "birth_year" in cls.private_fields
    case = REGISTRIES["testing"].classes["juwei.testing.CaseConfirmed.v2"]
    assert {"resident", "household"} <= case.private_fields  # "one new case in building 12", never who
