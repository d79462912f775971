"""BROKEN ON PURPOSE: skips its limiter: no token bucket, and every batch of an object in
flight at once (30 threads), whatever SYNCGATE_ENGINE_LIMITS says."""
from concurrent.futures import ThreadPoolExecutor

import requests

from _base import Engine, run

THREADS = 30


class SkipsItsLimiter(Engine):
    def __init__(self):
        super().__init__()
        adapter = requests.adapters.HTTPAdapter(pool_connections=THREADS, pool_maxsize=THREADS)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    def throttle(self):
        pass

    def send_adaptively(self, object_name, spec, items):
        batches = [items[i:i + 10] for i in range(0, len(items), 10)]
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            list(pool.map(lambda b: self.send_batch(object_name, spec, b), batches))


run(SkipsItsLimiter)
