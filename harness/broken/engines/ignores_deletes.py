"""BROKEN ON PURPOSE: treats a source delete as an ordinary change (upserts its data)."""
from _base import Engine, run


class IgnoresDeletes(Engine):
    def is_hard_delete(self, spec, record):
        return False

    def applies_delete_policy(self, record):
        return False


run(IgnoresDeletes)
