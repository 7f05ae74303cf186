"""gunicorn settings (https://docs.gunicorn.org/en/stable/settings.html); override with GUNICORN_CMD_ARGS."""

import multiprocessing
import os

bind = os.environ.get("LINLI_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("LINLI_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 9)))
threads = 2
# Pages answer in well under a second; solves never run inside a request.
timeout = 60
graceful_timeout = 30
keepalive = 5
max_requests = 1000
max_requests_jitter = 100
# Each worker opens its own database connections after the fork.
preload_app = False
accesslog = "-"
errorlog = "-"
# Path without the query string: searches (names) and check-in codes stay out of the logs.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
