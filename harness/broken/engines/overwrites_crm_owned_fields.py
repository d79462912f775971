"""BROKEN ON PURPOSE: a naive drift rule maps source columns onto same-named CRM-owned
fields (account_manager onto Account_Manager__c)."""
from _base import Engine, reference, run


class OverwritesCrmOwnedFields(Engine):
    def map_record(self, object_name, spec, record):
        payload, unmapped, routed = super().map_record(object_name, spec, record)
        for name, f in spec["fields"].items():
            if f.get("owner") != "crm":
                continue
            for column, value in record.data.items():
                if reference._norm(column) == reference._norm(name):
                    payload[name] = value
                    unmapped.discard(column)
                    routed[column] = name
        return payload, unmapped, routed


run(OverwritesCrmOwnedFields)
