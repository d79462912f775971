"""BROKEN ON PURPOSE: creates records (POST) instead of upserting them by external ID, so a
lost answer and its retry make a duplicate."""
from _base import Engine, run


class CreatesInsteadOfUpserting(Engine):
    def upsert_path(self, object_name, spec):
        return "POST", "composite/sobjects"


run(CreatesInsteadOfUpserting)
