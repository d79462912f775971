"""BROKEN ON PURPOSE: retries on its own short backoff and ignores Retry-After."""
from _base import Engine, run


class IgnoresRetryAfter(Engine):
    def honours_retry_after(self):
        return False


run(IgnoresRetryAfter)
