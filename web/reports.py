"""Placeholder: filled in next."""

from flask import Blueprint

bp = Blueprint("reports", __name__)
