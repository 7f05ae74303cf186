"""The demo district, kept apart from the domain modules: `flask demo load` and the tests use it.

It writes through the models in bulk (and shares the domain's occurrence expansion,
`demands.occurrence_times`); no use case depends on it.
"""

from .district import DEMO_PASSWORD, DemoSummary, load_demo, table_counts
from .history import add_history

__all__ = ["DEMO_PASSWORD", "DemoSummary", "add_history", "load_demo", "table_counts"]
