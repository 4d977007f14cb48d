"""Gunicorn for the uWSGI-vs-gunicorn rows: the same app, workers and settings as the uWSGI row.

    gunicorn -c bench/gunicorn.conf.py        (bench/run.py starts it; BENCH_BIND sets the port)

Settings: https://docs.gunicorn.org/en/stable/settings.html
"""

import os

# The store's WSGI callable, with the bench settings (its URLs and the store's middleware).
wsgi_app = "config.wsgi:application"
raw_env = ["DJANGO_SETTINGS_MODULE=bench.settings"]
# As many workers as the uWSGI it is compared with (deploy/uwsgi/shop.ini: 2, one per core).
workers = int(os.environ.get("BENCH_WORKERS", "2"))
# Sync workers: Gunicorn's default and its advice behind a buffering proxy; one request per
# worker at a time, like uWSGI's processes.
worker_class = "sync"
bind = os.environ.get("BENCH_BIND", "127.0.0.1:8000")
# Import the app in each worker, as uWSGI's lazy-apps does.
preload_app = False
# No access log, as uWSGI's disable-logging; errors to stderr.
accesslog = None
errorlog = "-"
# A stuck worker is killed after 30 s, as uWSGI's harakiri.
timeout = 30
