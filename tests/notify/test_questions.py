"""Residents' questions: near-duplicates grouped, ranked for staff, answered to every building that asked, FAQ."""

from __future__ import annotations

from services.notify.domain import QuestionGroup, bigrams, closest_group, normalise, similarity
from tests.conftest import both_databases
from tests.notify.conftest import Notify

ASKED = [
    ("1", "我们楼的阳性什么时候转运？"),
    ("2", "请问楼里阳性病例什么时候转运走"),
    ("3", "阳性什么时候能转运啊"),
    ("1", "1号楼的阳性啥时候转运"),
    ("2", "什么时候从封控区变成防范区？"),
    ("3", "封控区什么时候解封变防范区呢"),
    ("1", "这周的保供物资什么时候到，我的电话13912345678"),
]


def test_chinese_near_duplicates_are_grouped_by_bigram_similarity() -> None:
    assert normalise("请问：我们楼的阳性，什么时候转运？") == "楼阳性转运"
    assert similarity("阳性什么时候能转运啊", "我们楼的阳性什么时候转运？") > 0.3
    assert similarity("物资什么时候发？", "什么时候可以出门？") < 0.3  # "when" alone does not make a duplicate
    groups: list[QuestionGroup] = []
    placed = []
    for _building, text in ASKED:
        group = closest_group(text, groups)
        if group is None:
            group = QuestionGroup(str(len(groups)))
            groups.append(group)
        group.grams += bigrams(text)
        group.size += 1
        placed.append(group.id)
    assert placed == ["0", "0", "0", "0", "1", "1", "2"]


@both_databases
def test_questions_are_ranked_and_an_answer_reaches_every_building_that_asked_and_the_faq(
    notify: Notify, platforms
) -> None:
    bots = {b: platforms.bot("wecom", f"wk{b}") for b in ("1", "2", "3")}
    for building, bot in bots.items():
        notify.attach(building, "wecom", platforms.config(bot))
    for building, text in ASKED:
        officer = notify.key("information-officer", buildings=[building])
        answer = notify.client.post(
            f"/compounds/c1/buildings/{building}/questions", json={"text": text}, headers=officer
        )
        assert answer.status_code == 201, answer.text
    officer = notify.key("information-officer", buildings=["1"])
    assert (
        notify.client.post("/compounds/c1/buildings/2/questions", json={"text": "x"}, headers=officer).status_code
        == 403
    )  # only for their own building
    assert (
        notify.client.post("/compounds/c1/buildings/1/questions", json={"text": "？？"}, headers=officer).status_code
        == 422
    )

    staff = notify.key("committee-staff")
    ranked = notify.client.get("/compounds/c1/question-groups", headers=staff).json()["groups"]
    assert [(g["asked"], g["buildings"]) for g in ranked] == [
        (4, {"1": 2, "2": 1, "3": 1}),
        (2, {"2": 1, "3": 1}),
        (1, {"1": 1}),
    ]
    assert ranked[0]["text"] == "我们楼的阳性什么时候转运？" and len(ranked[0]["examples"]) == 4
    assert "13912345678" not in str(ranked) and "1**********" in ranked[2]["text"]  # phone numbers masked
    assert notify.client.get("/compounds/c1/question-groups", headers=officer).status_code == 403

    answer = notify.client.post(
        f"/compounds/c1/question-groups/{ranked[0]['question_group']}/answer",
        json={
            "question": "楼里的阳性病例什么时候转运？",
            "answer": "转运由区里统一安排，确定时间后会第一时间在本群通知。",
            "policy_points": ["阳性病例转运由区疫情防控指挥部统一调度", "转运后楼栋公共区域当天消杀"],
        },
        headers=staff,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["buildings"] == ["1", "2", "3"] and answer.json()["questions"] == 4
    notify.dispatcher.drain()
    for bot in bots.values():
        assert len(bot.texts) == 1
        text = bot.texts[0]
        assert text.startswith("答疑：楼里的阳性病例什么时候转运？\n转运由区里统一安排")
        assert "1. 阳性病例转运由区疫情防控指挥部统一调度" in text and "3 个楼栋的居民提出了这个问题" in text
    again = notify.client.post(
        f"/compounds/c1/question-groups/{ranked[0]['question_group']}/answer",
        json={"question": "q", "answer": "a"},
        headers=staff,
    )
    assert again.status_code == 409

    faq = notify.client.get("/compounds/c1/faq", headers=notify.key("household")).json()["faq"]
    assert [(f["question"], f["asked"], f["buildings"]) for f in faq] == [("楼里的阳性病例什么时候转运？", 4, 3)]
    assert [g["asked"] for g in notify.client.get("/compounds/c1/question-groups", headers=staff).json()["groups"]] == [
        2,
        1,
    ]
    # A new question like an answered one starts a new group and is pointed at the FAQ.
    later = notify.client.post(
        "/compounds/c1/buildings/3/questions",
        json={"text": "阳性病例啥时候转运？"},
        headers=notify.key("information-officer", buildings=["3"]),
    ).json()
    assert later["faq"] and later["faq"][0]["question"] == "楼里的阳性病例什么时候转运？"
    # Rebuilt from the log, the grouping comes out the same.
    before = notify.client.get("/compounds/c1/question-groups", params={"status": "all"}, headers=staff).json()
    notify.runtime.projector.rebuild(["questions"])
    after = notify.client.get("/compounds/c1/question-groups", params={"status": "all"}, headers=staff).json()
    assert before == after
