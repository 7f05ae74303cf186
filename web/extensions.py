"""Flask extensions, created unbound and bound in `create_app`."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from matcher.db import db

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
migrate = Migrate(render_as_batch=True, compare_type=True)
# Route-level limits. Password guesses are throttled by `matcher.throttle` instead (counters shared
# by every worker, with or without Redis). The address is the client's also behind a proxy
# (`register_proxy`: ProxyFix with PROXY_COUNT).
limiter = Limiter(key_func=get_remote_address, default_limits=[])

__all__ = ["babel", "csrf", "db", "limiter", "login_manager", "migrate"]
