"""BROKEN ON PURPOSE: keys records by company name instead of the source ID."""
from _base import Engine, run


class WrongExternalId(Engine):
    def external_id_value(self, spec, record):
        return record.data.get("company_name") or record.id


run(WrongExternalId)
