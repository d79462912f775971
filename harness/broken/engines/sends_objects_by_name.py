"""BROKEN ON PURPOSE: sends objects in the order of their API names instead of parents
first. Harmless while every parent's name sorts first (Account before Contact and
Opportunity); where a child sorts before its parent (Shipment__c before Yard__c) the
children go out before their parents exist and Salesforce refuses them."""
from _base import Engine, run


class SendsObjectsByName(Engine):
    def objects_parent_first(self):
        return sorted(self.bundle["objects"])


run(SendsObjectsByName)
