"""Placeholder: filled in next."""

from flask_smorest import Blueprint

from . import PREFIX

blp = Blueprint("api_demands", __name__, url_prefix=PREFIX, description="demands")
