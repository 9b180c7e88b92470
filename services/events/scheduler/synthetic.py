"""Seeded brokerage-event instances shaped like real ones, for the benchmark and the tests.

Requests are heavy-tailed: targets are drawn by a Pareto popularity, so a few participants (the
big pharma partner, the investor) are asked far more often than they have slots. Requesters are
mildly skewed too. 10-35% of participants miss part of the day (arrive late, leave early or step
out), a few meetings bring a colleague along, and priorities are 1-3. Tables are "tight" (3/4 of
what the requests that fit in participants' days would need) or "loose" (rarely binding).
"""
from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone

from services.events.scheduler.formats import Instance

SLOTS_PER_DAY = 12
# Tables per slot, as a share of the requests that participants' days could hold (tight) or of
# all requests (loose).
TABLE_FACTOR = {"tight": 0.75, "loose": 1.3}
POPULARITY_ALPHA = 1.5


def brokerage_instance(
    participants: int, meetings: int, slots: int, *, tables: str = "tight", seed: int = 0
) -> Instance:
    """An instance with the given sizes; `tables` is "tight" or "loose"."""
    rng = random.Random(seed)
    slot_rows = []
    for s in range(slots):
        day, k = divmod(s, SLOTS_PER_DAY)
        start = datetime(2026, 3, 10, 9, tzinfo=timezone.utc) + timedelta(days=day, minutes=30 * k)
        slot_rows.append({"id": f"s{s + 1}", "start": start.isoformat()})

    people = [f"p{i + 1}" for i in range(participants)]
    part_rows = [{"id": pid} for pid in people]
    share_away = rng.uniform(0.10, 0.35)
    for row in rng.sample(part_rows, round(share_away * participants)):
        row["unavailable"] = [slot_rows[s]["id"] for s in _absence(rng, slots)]

    popularity = list(itertools.accumulate(rng.paretovariate(POPULARITY_ALPHA) for _ in people))
    activity = list(itertools.accumulate(rng.paretovariate(2.5) for _ in people))
    pairs: set[frozenset[int]] = set()
    meeting_rows = []
    max_pairs = participants * (participants - 1) // 2
    while len(meeting_rows) < min(meetings, max_pairs):
        requester = rng.choices(range(participants), cum_weights=activity)[0]
        target = rng.choices(range(participants), cum_weights=popularity)[0]
        if requester == target or frozenset((requester, target)) in pairs:
            continue
        pairs.add(frozenset((requester, target)))
        members = [requester, target]
        if rng.random() < 0.08:
            colleague = rng.randrange(participants)
            if colleague not in members:
                members.append(colleague)
        meeting_rows.append({
            "id": f"m{len(meeting_rows) + 1}",
            "participants": [people[i] for i in members],
            "priority": rng.choices((1, 2, 3), weights=(55, 30, 15))[0],
        })
    degree = [0] * participants
    for row in meeting_rows:
        for pid in row["participants"]:
            degree[int(pid[1:]) - 1] += 1
    room = [slots - len(row.get("unavailable", ())) for row in part_rows]
    excess = sum(max(0, d - r) for d, r in zip(degree, room))
    wanted = len(meeting_rows) - excess if tables == "tight" else len(meeting_rows)
    for row in slot_rows:
        row["tables"] = max(1, round(TABLE_FACTOR[tables] * wanted / slots))
    return Instance.model_validate({"slots": slot_rows, "participants": part_rows, "meetings": meeting_rows})


def _absence(rng: random.Random, slots: int) -> range:
    length = rng.randint(max(1, slots // 6), max(1, slots // 2))
    kind = rng.random()
    if kind < 0.4:
        return range(0, length)                       # arrives late
    if kind < 0.8:
        return range(slots - length, slots)           # leaves early
    first = rng.randrange(0, slots - length + 1)      # steps out
    return range(first, first + length)
