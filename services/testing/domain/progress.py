"""A resident's status in a round, which decides what kind of sample they may give next, and the milestones a
building's group is told of. Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from juwei.aggregate import Conflict

# --- a resident's status in a round ------------------------------------------------------------------------

# Statuses that still want a sample (or a self-report), and the kind of sample each gets.
NEXT_SAMPLE = {
    None: "pooled",
    "recall": "pooled",
    "retest": "individual",
    "recall-individual": "individual",
    "pcr-requested": "individual",
}
AWAITING_RESULT = frozenset({"sampled", "individual-sampled"})
TO_RESAMPLE = frozenset({"recall", "recall-individual", "retest", "pcr-requested", "antigen-invalid"})


def sample_kind(status: str | None, round_kind: str) -> str:
    """The kind of PCR sample a resident with this status gives next, or why they give none."""
    if status is None and round_kind == "antigen":
        raise Conflict(
            "an antigen day is a self-test: a PCR sample is taken only when a positive antigen asks for it",
            code="self-test-round",
        )
    if status not in NEXT_SAMPLE:
        raise Conflict(f"this resident needs no sample now (status {status})", code="already-sampled")
    return NEXT_SAMPLE[status]


def status_after(status: str | None, event: str, result: str | None = None) -> str | None:
    """A resident's status in a round after one of the events concerning them."""
    if event == "SampleCollected":
        return "individual-sampled" if NEXT_SAMPLE.get(status) == "individual" else "sampled"
    if event == "TubeResulted":
        return {"negative": "negative", "positive": "retest", "invalid": "recall"}[result or ""]
    if event == "IndividualResultRecorded":
        return {"negative": "negative", "positive": "positive", "invalid": "recall-individual"}[result or ""]
    if event == "AntigenReported":
        return {"negative": "antigen-negative", "positive": "pcr-requested", "invalid": "antigen-invalid"}[result or ""]
    return status


MILESTONES = (25, 50, 75, 100)


def milestone_passed(before: int, after: int, residents: int) -> int | None:
    """The highest milestone (percent tested) that ``after`` reaches and ``before`` did not, if any."""
    if residents <= 0 or after <= before:
        return None
    passed = [m for m in MILESTONES if before * 100 < m * residents <= after * 100]
    return passed[-1] if passed else None


def listed_twice(tubes: Sequence[str]) -> dict[int, int]:
    """Items naming a tube an earlier item named: {index: index of the first}. A plate or upload lists a tube once."""
    first: dict[str, int] = {}
    repeated: dict[int, int] = {}
    for index, tube in enumerate(tubes):
        if tube in first:
            repeated[index] = first[tube]
        else:
            first[tube] = index
    return repeated


def tested(status: str | None) -> bool:
    """Whether the resident gave a sample or a self-report in the round (what the building counts)."""
    return status is not None
