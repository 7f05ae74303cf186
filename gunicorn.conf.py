"""gunicorn settings (https://docs.gunicorn.org/en/stable/settings.html); override with GUNICORN_CMD_ARGS."""

import multiprocessing
import os
import re

from gunicorn.glogging import Logger

bind = os.environ.get("LINLI_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("LINLI_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 9)))
threads = 2
# Pages answer in well under a second; solves never run inside a request.
timeout = 60
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (a slow leak cannot grow for ever). Not much lower: a
# new worker imports the app and fills its caches again (at 1,000 a district's busy hour replaced a
# worker every two minutes, and the replacing cost 7 % of the CPU: bench/load-report-after.md).
max_requests = 20000
max_requests_jitter = 2000
# Each worker opens its own database connections after the fork.
preload_app = False
accesslog = "-"
errorlog = "-"
# Path without the query string: searches (names) and check-in codes stay out of the logs.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'

# The calendar feed's path holds its secret token (/calendar/<token>.ics): every access-log field
# shows it as /calendar/[token].ics instead.
_CALENDAR_TOKEN = re.compile(r"/calendar/[^/?#\s\"]+\.ics")
# One-time links (an invitation, an activation, a password reset) hold theirs in the path too.
_LINK_TOKEN = re.compile(r"/(join|activate|reset)/[^/?#\s\"]+")


def redact(value):
    """A log field with any calendar feed or one-time link token replaced."""
    if not isinstance(value, str):
        return value
    return _LINK_TOKEN.sub(r"/\1/[token]", _CALENDAR_TOKEN.sub("/calendar/[token].ics", value))


class RedactingLogger(Logger):
    """gunicorn's logger, with secrets in request paths taken out of every access-log field."""

    def atoms(self, resp, req, environ, request_time):
        return {key: redact(value) for key, value in super().atoms(resp, req, environ, request_time).items()}


logger_class = RedactingLogger
