"""The morning: role keys for the committee, the register (buildings, households, staff, volunteers), every
service catching up on it over Kafka, and the building groups' channels."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from demo.api import DemoError, in_parallel, wait_until
from demo.day import KEYS_FIRST, ROLE_KEYS, Day
from demo.sinks import GroupSinks


class Registration(Day):
    """Keys, the register, the catch-up and the channels."""

    def role_keys(self, whose: tuple[str, ...]) -> None:
        """Keys scoped to the compound for these roles, each issued to a person of the register (or the
        subdistrict office), made with ``juwei keys create`` where the services' databases are here."""
        assert self.outcome is not None
        choice = self.options.role_keys
        env = {**os.environ, **(self.options.cli_env or {})}
        if choice == "operator" or (choice == "auto" and not _local_databases(env)):
            self.say("[dim]role keys: the operator key acts for everyone (the services' databases are not here)[/]")
            return
        compound = self.outcome.compound
        secretary = next(iter(compound.staff))
        if "staff" in whose:  # the secretary is registered (no buildings yet) so that the key names them
            self.suite.put("residents", self.path(f"/staff/{secretary}/buildings"), {"buildings": []})
        first = compound.teams[next(iter(compound.teams))]
        every = ",".join(b.building for b in compound.buildings)
        holders = {
            "staff": ["--staff", secretary],
            "officer": ["--volunteer", first.officer, "--buildings", every],
            "logistics": ["--volunteer", first.leader, "--buildings", every],
            "subdistrict": ["--official", "subdistrict office (demo)"],
        }
        # One `juwei keys create` per role, side by side (each stores its key in all four services).
        running = {
            who: subprocess.Popen(
                [sys.executable, "-m", "juwei.cli", "keys", "create", "--role", ROLE_KEYS[who][0],
                 "--compound", self.c, "--label", ROLE_KEYS[who][1], *holders[who]],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            )
            for who in whose
        }  # fmt: skip
        for who, process in running.items():
            out, err = process.communicate(timeout=180)
            key = out.strip().splitlines()[-1] if process.returncode == 0 and out.strip() else ""
            if key and self._works(key):
                self.keys[who] = key
                self.outcome.keys[who] = "cli"
            elif choice == "cli":
                raise DemoError(f"`juwei keys create --role {ROLE_KEYS[who][0]}` gave no working key: {err[-500:]}")
        if any(who not in self.keys for who in whose):
            self.say("[yellow]some role keys could not be made here: the operator key acts for them[/]")

    def _works(self, key: str) -> bool:
        """Whether every service knows the key (each keeps its own table of keys)."""
        try:
            self.suite.get("residents", self.path("/zones"), key=key, attempts=1)
            self.suite.get("supplies", self.path("/ledger"), key=key, attempts=1)
            self.suite.get("testing", self.path("/rounds"), key=key, attempts=1)
            self.suite.get("notify", self.path("/quiet-hours"), key=key, attempts=1)
            return True
        except DemoError:
            return False

    def register(self) -> None:
        assert self.outcome is not None
        compound = self.outcome.compound
        staff = self.key("staff")
        with self.phase("register: buildings and residents (CSV import)", 2) as advance:
            sheet = compound.buildings_csv()
            self.suite.post(
                "residents",
                self.path("/import"),
                params={"kind": "buildings"},
                content=sheet,
                headers={"Content-Type": "text/csv"},
                key=staff,
            )
            advance(1)
            sheet = compound.residents_csv()
            imported = self.suite.post(
                "residents",
                self.path("/import"),
                params={"kind": "residents"},
                content=sheet,
                headers={"Content-Type": "text/csv"},
                key=staff,
            )
            advance(1)
        people = compound.people
        self.outcome.figures.update(
            buildings=len(compound.buildings),
            households=imported["households"]["created"],
            residents=imported["residents"]["created"],
            elderly=sum(compound.elderly(p) for p in people),
            regular_medication=sum(p.regular_medication for p in people),
            bedridden=sum(p.bedridden for p in people),
            infants=sum(p.infant for p in people),
            pregnant=sum(p.pregnant for p in people),
        )
        with self.phase("staff coverage", len(compound.staff)) as advance:
            for member, buildings in compound.staff.items():
                self.suite.put(
                    "residents", self.path(f"/staff/{member}/buildings"), {"buildings": buildings}, key=staff
                )
                advance(1)
            coverage = self.suite.get("residents", self.path("/coverage"), key=staff)
            if coverage["uncovered"]:
                raise DemoError(f"buildings nobody covers: {coverage['uncovered']}")
        teams = compound.teams
        with self.phase("volunteers: officer, logistics group A/B, sampling", len(teams) * 8) as advance:

            def enlist(building: str) -> None:
                team = teams[building]
                skills = (["spreadsheets", "statistics"], ["writing", "publicity"])[int(building) % 2]
                chosen = [
                    (team.officer, skills, "information_officer", None, False),
                    *(
                        (v, ["carrying"] + (["organising"] if lead else []), "logistics", shift, lead)
                        for v, shift, lead in team.logistics
                    ),
                    (team.sampler, ["sampling"], "sampling_point", None, False),
                ]
                for volunteer, their_skills, role, shift, leader in chosen:
                    self.suite.post(
                        "residents",
                        self.path("/volunteers"),
                        {"volunteer": volunteer, "building": building, "skills": their_skills},
                        key=staff,
                    )
                    body: dict[str, Any] = {"role": role, "leader": leader}
                    if shift:
                        body["shift"] = shift
                    self.suite.put("residents", self.path(f"/buildings/{building}/roles/{volunteer}"), body, key=staff)
                    advance(1)

            in_parallel(enlist, list(teams), self.options.workers)
        self.outcome.figures.update(staff=len(compound.staff), volunteers=len(teams) * 8)
        with self.phase("API keys for the information officers and the logistics groups"):
            self.role_keys(tuple(who for who in ROLE_KEYS if who not in KEYS_FIRST))

    def catch_up(self) -> None:
        """Testing, supplies and notify learn the register from juwei.residents (Kafka): wait until they have."""
        assert self.outcome is not None
        compound = self.outcome.compound
        with self.phase("the register reaches testing, supplies and notify over Kafka"):
            how = self.suite.settle(self.options.kafka, timeout=300)
            households = Counter(b for b, _f, _r in compound.households.values())

            def notify_knows() -> bool:
                groups = self.suite.get("notify", self.path("/groups"), key=self.key("staff"))["groups"]
                seen = {g["building"]: (g["households"], g["members"]) for g in groups}
                return all(seen.get(b) == (n, n) for b, n in households.items())

            wait_until(notify_knows, "notify's building groups to know every household", timeout=120)
        self.say(f"[dim]caught up: {how}[/]")

    def attach_channels(self) -> None:
        assert self.outcome is not None
        buildings = [b.building for b in self.outcome.compound.buildings]
        self.sinks = GroupSinks(self.c, self.options.sink_host, self.options.sink_advertised)
        attached = 0
        with self.phase("channels: a chat bot and an e-mail list per building group", len(buildings)) as advance:
            for building in buildings:
                existing = self.suite.get("notify", self.path(f"/groups/{building}/channels"), key=self.key("staff"))
                if not any(c["active"] for c in existing):  # a real channel configured: leave the group to it
                    for kind, config in self.sinks.channels_for(building):
                        self.suite.post(
                            "notify",
                            self.path(f"/groups/{building}/channels"),
                            {"kind": kind, "config": config, "label": f"{building}号楼官方群"},
                            key=self.key("staff"),
                        )
                        attached += 1
                advance(1)
        self.outcome.figures["channels"] = attached


def _local_databases(env: dict[str, str]) -> bool:
    """Whether ``juwei keys create`` here writes where the services read keys (their databases are here)."""
    if any(k.endswith("_DATABASE_URL") and k.startswith("JUWEI_") for k in env):
        return True
    data_dir = Path(env.get("JUWEI_DATA_DIR") or ".local")
    return all((data_dir / f"{name}.db").exists() for name in ("residents", "supplies", "testing", "notify"))
