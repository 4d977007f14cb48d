"""Run one piece of work in many threads released at the same instant."""

import threading

from django.db import connection


def run_together(count, work, timeout=60):
    """Run `work(i)` in `count` threads that start together; return the results in order.

    Each thread closes the database connection it opened, so transactional tests can flush.
    """
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        try:
            barrier.wait()
            results[i] = work(i)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results
