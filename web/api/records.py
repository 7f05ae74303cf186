"""Placeholder: filled in next."""

from flask_smorest import Blueprint

from . import PREFIX

blp = Blueprint("api_records", __name__, url_prefix=PREFIX, description="records")
