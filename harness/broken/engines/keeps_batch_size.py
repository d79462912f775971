"""BROKEN ON PURPOSE: never shrinks its batches, so records an org-side trigger cannot take
in a batch of 200 (Apex CPU time limit) are dead-lettered instead of landing."""
from _base import Engine, run


class KeepsBatchSize(Engine):
    @staticmethod
    def needs_smaller_batch(code, message):
        return False


run(KeepsBatchSize)
