"""BROKEN ON PURPOSE: its daily-budget guard stops one call late: it spends the window's
last API call (USED = MAX) before it waits for the next window."""
from _base import Engine, run


class SpendsLastCall(Engine):
    budget_margin = 0
    max_window_waits = 4


run(SpendsLastCall)
