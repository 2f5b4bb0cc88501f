"""The daily account's rules as plain Python: its figures, the compound's sums, its text, when it is due."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from services.notify.account.domain import (
    FIGURES,
    account_params,
    building_figures,
    compound_figures,
    due,
    parse_hour,
    quiet_day,
)
from services.notify.rules import day, render_texts

DAY = date(2022, 4, 12)


def test_a_building_shows_every_figure_but_the_compound_only_ones_with_zero_for_what_did_not_happen() -> None:
    figures = building_figures({"samples_taken": 5, "delivered": 2}, missing=3)
    assert figures["samples_taken"] == 5 and figures["delivered"] == 2 and figures["samples_missing"] == 3
    assert figures["cards_returned"] == 0 and figures["questions_answered"] == 0
    assert "donations_accepted" not in figures and "donations_refused" not in figures


def test_the_compound_sums_its_buildings_unless_a_figure_is_kept_for_the_compound() -> None:
    buildings = {
        "c1:1": building_figures({"samples_taken": 5, "results": 4, "questions_answered": 1}, missing=3),
        "c1:2": building_figures({"samples_taken": 7, "delivered": 6}, missing=None),
    }
    whole = compound_figures(buildings, {"questions_answered": 3, "donations_refused": 1})
    assert whole["samples_taken"] == 12 and whole["results"] == 4 and whole["delivered"] == 6
    assert whole["samples_missing"] == 3  # only building 1's is known
    assert whole["questions_answered"] == 3  # the whole answer, including questions of no building still known
    assert whole["donations_refused"] == 1 and whole["donations_accepted"] == 0
    assert set(whole) == set(FIGURES)


def test_missing_samples_stay_unknown_until_testing_reports_a_building() -> None:
    buildings = {"c1:1": building_figures({"samples_taken": 5}, missing=None)}
    assert compound_figures(buildings, {})["samples_missing"] is None


def test_a_day_with_nothing_counted_is_quiet_and_the_account_says_so() -> None:
    nothing = building_figures({}, missing=None)
    assert quiet_day(nothing) and not quiet_day(building_figures({"cards_returned": 1}, missing=None))
    params = {**account_params(DAY, "3", nothing, compound_figures({"c1:3": nothing}, {})), "day": day(DAY)}
    texts = render_texts("daily_account", params)
    assert "今天本楼没有登记的事项" in texts.body_zh and "Nothing was recorded for this building" in texts.body_en


def test_the_text_carries_the_figures_in_both_languages_and_nothing_but_counts() -> None:
    b = building_figures(
        {
            "samples_taken": 11,
            "results": 9,
            "delivered": 6,
            "delivery_failed": 2,
            "followed_up": 1,
            "medicine_requested": 3,
            "cards_collected": 2,
            "medicine_bought": 2,
            "cards_returned": 1,
            "questions_asked": 4,
            "questions_answered": 2,
        },
        missing=7,
    )
    c = compound_figures(
        {"c1:3": b, "c1:4": building_figures({"samples_taken": 20}, missing=0)}, {"donations_accepted": 2}
    )
    texts = render_texts("daily_account", {**account_params(DAY, "3", b, c), "day": day(DAY)})
    assert texts.title_zh == "4月12日工作日报：3号楼"
    assert texts.title_en == "Daily account for 12 Apr 2022: building 3"
    assert "光做不说不行" in texts.body_zh
    assert "采样 11 人次，还有 7 人未采，出结果 9 份" in texts.body_zh
    assert "送达 6 户，未送达待跟进 2 户，跟进完成 1 户" in texts.body_zh
    assert "登记 3 份，取卡 2 张，买到药 2 份，药和卡送回 1 张" in texts.body_zh
    assert "收到提问 4 条，已答复 2 条" in texts.body_zh
    assert "采样 31 人次，还有 7 人未采" in texts.body_zh and "接收 2 批，谢绝 0 批" in texts.body_zh
    assert "11 samples taken, 7 residents not yet sampled, 9 results back" in texts.body_en
    assert "31 samples taken" in texts.body_en and "Donations: 2 accepted, 0 refused" in texts.body_en
    assert "4 asked, 2 answered" in texts.body_en and "1 cards returned" in texts.body_en


def test_only_counts_reach_the_text() -> None:
    b = building_figures({}, missing=None)
    with pytest.raises(ValueError, match="must be a count"):
        account_params(DAY, "3", {**b, "delivered": "c1:r3-1"}, b)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="must be a count"):
        account_params(DAY, "3", b, {**b, "results": -1})


def test_the_set_hour_is_hh_mm_or_off_and_the_account_is_due_once_it_has_passed() -> None:
    assert parse_hour("20:00") == time(20, 0) and parse_hour(" 07:30 ") == time(7, 30)
    assert parse_hour("off") is None and parse_hour("") is None and parse_hour(None) is None
    for wrong in ("24:00", "20:60", "8pm", "20:0", "20"):
        with pytest.raises(ValueError, match="JUWEI_DAILY_ACCOUNT_AT"):
            parse_hour(wrong)
    assert not due(datetime(2022, 4, 12, 19, 59), time(20, 0))
    assert due(datetime(2022, 4, 12, 20, 0), time(20, 0)) and due(datetime(2022, 4, 12, 23, 10), time(20, 0))
    assert not due(datetime(2022, 4, 12, 23, 59), None)
