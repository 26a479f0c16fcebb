"""Plant dashboard: a Streamlit app for operators and engineers (``dashboard/app.py``).

Pages read through :mod:`ingest.store.queries`, change state through
:mod:`ingest.store.actions`, and list models through :mod:`core.inference.registry`. The names below
import no Streamlit, so the CLI can hash passwords and start the server with them.
"""

from dashboard.auth import hash_password, verify_password
from dashboard.launch import start_dashboard, stop_dashboard, wait_ready

__all__ = ["hash_password", "start_dashboard", "stop_dashboard", "verify_password", "wait_ready"]
