"""Residents' questions from several buildings, grouped as near-duplicates and answered to every building that asked."""

from __future__ import annotations

from demo.day import Day

# Residents' questions as information officers pass them on: two themes asked in several buildings.
QUESTIONS = {
    "transfer": (
        "我们楼的阳性什么时候转运？",
        "请问楼里阳性病例什么时候转运走",
        "阳性什么时候能转运啊",
        "楼里的阳性啥时候转运",
    ),
    "zone": ("什么时候从封控区变成防范区？", "封控区什么时候解封变防范区呢", "小区什么时候能变成防范区"),
}


ANSWERS = {
    "transfer": {
        "question": "楼里的阳性病例什么时候转运？",
        "answer": "转运由区里统一调度，今天 14:00 已安排车辆；转运完成后会在本群通知，并对楼栋公共区域消杀。",
        "policy_points": ["阳性病例转运由区疫情防控指挥部统一调度", "转运后楼栋公共区域当天消杀，并在群内公布照片"],
    },
    "zone": {
        "question": "小区什么时候从封控区转为防范区？",
        "answer": "封控区连续 7 天无新增阳性转为管控区，再满 7 天无新增转为防范区；每天的天数会在本群通报。",
        "policy_points": ["封控区：足不出户，服务上门", "7 天无新增阳性转管控区，14 天无新增转防范区"],
    },
}


class Questions(Day):
    """Questions passed on by the information officers, and the committee's answers."""

    def questions(self) -> None:
        assert self.outcome is not None
        buildings = [b.building for b in self.outcome.compound.buildings]
        case_building = self.outcome.case_building
        at = buildings.index(case_building)
        # The case's building and its neighbours ask about the transfer; buildings across the compound about the zone.
        asking = {
            "transfer": [buildings[(at + k) % len(buildings)] for k in (0, 0, 1, -1)],
            "zone": [buildings[(at + k) % len(buildings)] for k in (len(buildings) // 2, len(buildings) // 3, 2)],
        }
        officer, staff = self.key("officer"), self.key("staff")
        asked = 0
        with self.phase("residents' questions: passed on, grouped, answered to every building that asked") as advance:
            for theme, where in asking.items():
                for building, text in zip(where, QUESTIONS[theme], strict=False):
                    self.suite.post(
                        "notify", self.path(f"/buildings/{building}/questions"), {"text": text}, key=officer
                    )
                    asked += 1
                    advance(1)
            groups = self.suite.get("notify", self.path("/question-groups"), key=staff)["groups"]
            answered = []
            for group in groups:
                theme = "transfer" if "转运" in " ".join(group["examples"]) else "zone"
                if len(group["buildings"]) < 2:
                    continue  # asked in one building only: the officer answers there
                done = self.suite.post(
                    "notify",
                    self.path(f"/question-groups/{group['question_group']}/answer"),
                    {**ANSWERS[theme], "priority": "normal"},
                    key=staff,
                )
                answered.append((theme, done["buildings"]))
                advance(1)
        self.outcome.figures.update(questions=asked, question_groups=len(groups), answers=answered)
        self.say(
            f"{asked} questions from {len({b for w in asking.values() for b in w})} buildings → "
            f"{len(groups)} groups; answered: " + "; ".join(f"{t} → buildings {', '.join(b)}" for t, b in answered)
        )
