"""Placeholder: filled in next."""

from flask import Blueprint

bp = Blueprint("records", __name__)
