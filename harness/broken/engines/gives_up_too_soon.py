"""BROKEN ON PURPOSE: no retries, so one transient 503 loses a batch."""
from _base import Engine, run


class GivesUpTooSoon(Engine):
    max_attempts = 1


run(GivesUpTooSoon)
