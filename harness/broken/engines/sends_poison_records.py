"""BROKEN ON PURPOSE: sends records its own contract rejects, spending calls to be told no."""
from _base import Engine, run


class SendsPoisonRecords(Engine):
    def prevalidate(self, object_name, spec, payload):
        pass


run(SendsPoisonRecords)
