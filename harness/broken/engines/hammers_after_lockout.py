"""BROKEN ON PURPOSE: treats the daily-budget lockout as a blip and keeps calling."""
from _base import Engine, run


class HammersAfterLockout(Engine):
    def guard_budget(self):
        pass

    def on_lockout(self, headers):
        return False  # retried on backoff like any transient error


run(HammersAfterLockout)
