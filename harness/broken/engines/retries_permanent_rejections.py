"""BROKEN ON PURPOSE: treats every per-record error as transient, so records Salesforce
rejected for good are sent again, unchanged, until its attempts run out."""
from _base import Engine, run


class RetriesPermanentRejections(Engine):
    backoff_cap = 2.0

    def retryable_item(self, code, message):
        return True


run(RetriesPermanentRejections)
