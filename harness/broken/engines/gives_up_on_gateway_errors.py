"""BROKEN ON PURPOSE: takes a gateway error and a record locked inside a 200 as final.

It retries only the errors Salesforce's API itself calls transient: a 502 Bad Gateway or a
504 Gateway Timeout from the edge (an HTML page or no body, no errorCode) is dead-lettered
as if it were a rejection, and so is a record that failed UNABLE_TO_LOCK_ROW inside a
successful collections answer.
"""
from _base import Engine, run


class GivesUpOnGatewayErrors(Engine):
    def retryable_answer(self, status, code):
        if status in (502, 504):
            return False
        return super().retryable_answer(status, code)

    def retryable_item(self, code, message):
        return False


run(GivesUpOnGatewayErrors)
