"""BROKEN ON PURPOSE: keeps no record of what it applied, so at-least-once delivery of the
same changes costs every call again (and would overwrite newer values with old ones)."""
from _base import Engine, run


class ResendsSettledVersions(Engine):
    remembers = False


run(ResendsSettledVersions)
