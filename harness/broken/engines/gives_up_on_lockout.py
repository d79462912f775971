"""BROKEN ON PURPOSE: will not wait for the daily window; stops when the budget is spent."""
from _base import Engine, run


class GivesUpOnLockout(Engine):
    max_window_waits = 0


run(GivesUpOnLockout)
