"""BROKEN ON PURPOSE: overwrites values a sales rep edited after the source's change."""
from _base import Engine, run


class OverwritesManualEdits(Engine):
    def resolve_conflicts(self, object_name, spec, items):
        pass


run(OverwritesManualEdits)
