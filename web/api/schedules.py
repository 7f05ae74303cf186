"""Placeholder: filled in next."""

from flask_smorest import Blueprint

from . import PREFIX

blp = Blueprint("api_schedules", __name__, url_prefix=PREFIX, description="schedules")
