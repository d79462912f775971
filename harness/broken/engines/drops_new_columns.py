"""BROKEN ON PURPOSE: drops source columns no field reads without reporting them."""
from _base import Engine, run


class DropsNewColumns(Engine):
    def report_columns(self, spec, unmapped, routed):
        super().report_columns(spec, set(), routed)


run(DropsNewColumns)
