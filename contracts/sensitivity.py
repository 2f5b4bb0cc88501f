"""How sensitive each payload field of the four catalogues is, by its name (events override where a name means
something else in them, e.g. ``households`` as a count, or a household id that says who has a case).

- ``identity``: names a person (name, phone, ID number, birth year, a donor's name). Never published: such
  fields are private, sealed in the owning service's own log.
- ``health``: says something about a person's health (needs flags, test results and cassette photos, home
  visits for the bedridden, prescriptions, the people of a case). Never in clear on Kafka: sealed per data
  subject, or kept in the owning service; left out for every reader without a health grant.
- ``location``: where a person lives or is (building, floor, room, household, resident and card ids: a
  household id names a flat). Readers see only the places their scope covers.
- ``none``: everything else (rounds, batches, counts, times, volunteers' and staff's work ids).
"""

from __future__ import annotations

from juwei.events import Sensitivity

_LOCATION = (
    "building",
    "buildings",
    "from_building",
    "household",
    "households",
    "from_household",
    "to_household",
    "floor",
    "room",
    "rooms",
    "lowest_floor",
    "highest_floor",
    "resident",
    "residents",
    "card",
    "shares",
    "orders",
    "calls",
)
_HEALTH = (
    "regular_medication",
    "mobility_impaired",
    "bedridden",
    "pregnant",
    "health",
    "result",
    "door_to_door",
    "visits",
    "photo",
    "prescription",
)
# A resident's question may name someone: its text is kept as identity (private to notify).
_IDENTITY = ("identity", "birth_year", "donor_name", "text", "question_text")
_NONE = (
    # residents
    "number", "floors", "rooms_per_floor", "lifts", "lift_capacity", "elderly", "infant", "previous", "staff",
    "volunteer", "skills", "role", "shift", "leader", "replaces", "reason", "scope", "case_on", "zone",
    "last_case_on", "days_since_last_case", "next_zone", "next_change_on", "decided_by_authority", "subdistrict",
    "sealed_days", "precaution_days", "group", "description", "availability", "week", "asked_on",
    # testing
    "point", "points", "name", "location", "throughput", "volunteers", "proposed", "round", "kind", "on",
    "starts_at", "mode", "floors_per_call", "floor_order", "pool_size", "slot_minutes", "window_minutes",
    "lift_trip_minutes", "walk_floors", "auto_advance", "queue_limit", "peak_queue", "call", "people",
    "planned_at", "called_at", "called_by", "tube", "attempt", "collected_at", "tested", "milestone",
    "resulted_at", "reported_at", "case", "confirmed_on", "since", "scheduled_at", "transferred_at", "facility",
    "outcome", "closed_at", "disinfection", "done_at", "areas", "photos", "home_visits", "file", "rows", "recorded",
    "repeated", "imported_at",
    # supplies
    "rota_pattern", "rota_starts_on", "both_shifts_households", "both_shifts_items", "card_return_hours",
    "donation_categories", "batch", "source", "label", "arrived_on", "items", "donations", "method", "needs",
    "shift_on_duty", "shifts", "both", "delivered", "follow_ups", "by", "resolution", "resolved_otherwise",
    "request", "requested_on", "giver", "receiver", "requests", "handover", "cards_in_handover", "at",
    "fulfilled", "still_open", "holder", "out_since", "hours_out", "limit_hours", "donation", "donor",
    "received_on",
    # notify
    "channel", "language", "config", "start", "end", "message", "priority", "template", "cause", "title_zh",
    "body_zh", "title_en", "body_en", "delivery", "merged", "code", "retry_at", "channel_broken", "question",
    "answer_id", "questions", "answer", "policy_points", "due_at",
)  # fmt: skip

VOCABULARY: dict[str, Sensitivity] = {
    **dict.fromkeys(_NONE, "none"),
    **dict.fromkeys(_LOCATION, "location"),
    **dict.fromkeys(_HEALTH, "health"),
    **dict.fromkeys(_IDENTITY, "identity"),
}
# A count named like a list of places is no place: ``BuildingDelivered.households`` is how many.
COUNT: Sensitivity = "none"
