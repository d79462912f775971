"""BROKEN ON PURPOSE: keeps the first version it sees of each record, so later changes never
reach the org."""
from _base import Engine, run


class StaleVersionWins(Engine):
    def latest(self, records):
        first = {}
        for r in records:
            first.setdefault(r.id, r)
        return list(first.values())


run(StaleVersionWins)
