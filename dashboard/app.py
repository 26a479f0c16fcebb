"""GenEdge plant dashboard: ``streamlit run dashboard/app.py -- [--config FILE]``.

Settings come from :meth:`core.settings.Settings.load` (the TOML file and ``GENEDGE_*``
variables). Nothing but the sign-in page is reachable before signing in; the pages a user
sees depend on their role. Sessions live on the server (:mod:`dashboard._sessions`): signing
out ends them, and repeated failed sign-ins lock a user name and a client address out for a while.

Every signed-in page opens with a live strip of the open alarms (and, for a simulated plant, its
clock). Everything the browser loads is served by the dashboard itself: the tab icon is inline,
so no request leaves the plant network.
"""

from __future__ import annotations

import sys
import threading
import time

import streamlit as st

from core.errors import ConfigError
from dashboard import _context as ctx
from dashboard import _ui
from dashboard.auth import Permission, User, parse_users

_VIEWS = "views"
_OPEN_ALARM_STATES = ("active", "acknowledged", "shelved")


def _sign_in_page() -> None:
    st.title("GenEdge plant dashboard")
    try:
        users = parse_users(ctx.settings().dashboard.users)
    except ConfigError as err:
        st.error(f"The dashboard users in the settings are invalid: {err}")
        return
    if not users:
        st.warning("No dashboard users are configured, so nobody can sign in.")
        st.markdown(
            "Create a user with a hashed password:\n\n"
            "```bash\npython -m dashboard.auth alice --role engineer   # or --role operator\n```\n\n"
            "It prints the entry to put in your `--config` TOML file:\n\n"
            '```toml\n[dashboard.users.alice]\nrole = "engineer"\npassword_hash = "scrypt$16384$8$1$..."\n```\n\n'
            "or to set as `GENEDGE_DASHBOARD__USERS='{\"alice\": {\"role\": \"engineer\", "
            "\"password_hash\": \"scrypt$...\"}}'`, then restart the dashboard. "
            "`genedge demo` creates the demo users `operator` and `engineer` itself."
        )
        return
    with st.form("sign_in", border=True, width=420):
        st.subheader("Sign in")
        name = st.text_input("User", key="sign_in_user", autocomplete="username")
        password = st.text_input("Password", type="password", key="sign_in_password",
                                 autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        user, problem = ctx.attempt_sign_in(name.strip(), password)
        if user is None:
            time.sleep(0.5)  # slows down guessing a little; hashing and the lockout are the real cost
            st.error(problem)
            return
        st.rerun()


def _pages(user: User) -> dict[str, list[st.Page]]:
    pages: dict[str, list[st.Page]] = {
        "Plant": [
            st.Page(f"{_VIEWS}/overview.py", title="Plant overview", icon=":material/factory:", default=True),
            st.Page(f"{_VIEWS}/asset.py", title="Asset detail", icon=":material/precision_manufacturing:"),
            st.Page(f"{_VIEWS}/alarms.py", title="Alarms", icon=":material/notifications_active:"),
        ],
        "Maintenance": [
            st.Page(f"{_VIEWS}/work_orders.py", title="Prescriptions & work orders", icon=":material/build:"),
        ],
        "Integration": [
            st.Page(f"{_VIEWS}/data_quality.py", title="Data quality", icon=":material/rule:"),
        ],
    }
    engineering = []
    if user.can(Permission.MODELS):
        engineering.append(st.Page(f"{_VIEWS}/models.py", title="Models", icon=":material/model_training:"))
    if user.can(Permission.SYNTH):
        engineering.append(st.Page(f"{_VIEWS}/synthetic.py", title="Synthetic data", icon=":material/science:"))
    if engineering:
        pages["Engineering"] = engineering
    return pages


@st.cache_resource(show_spinner=False)
def _warm_imports() -> threading.Thread:
    """Import the heavy analysis modules once per server while the first user signs in."""

    def _load() -> None:
        # Off the sign-in page's path: the charts and signal analysis (plotly, pandas, scipy) take
        # seconds to import, paid here once per server instead of on a user's first page.
        from dashboard import _charts, _data, _signal  # noqa: F401, PLC0415

    t = threading.Thread(target=_load, name="warm-imports", daemon=True)
    t.start()
    return t


def _plant_clock() -> str | None:
    """The simulated plant's clock in words, when the plant's readings come from the simulator."""
    s = ctx.settings()
    return _ui.clock_text(s.sim.time_acceleration) if s.edge.source.kind == "simulator" else None


@st.fragment(run_every=_ui.REFRESH_S)
def _alarm_strip() -> None:
    """Open alarms on every page, live; a link to the alarm list while any is unacknowledged."""
    # After sign-in only: the store loaders import pandas and the prescriber, which the sign-in
    # page does without (they load in the background meanwhile, see _warm_imports).
    from dashboard import _data  # noqa: PLC0415
    from dashboard._cards import alarm_strip_html  # noqa: PLC0415

    alarms = _data.load_alarms(ctx.store_url(), _OPEN_ALARM_STATES, None, 500)
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key="alarm-strip"):
        st.markdown(alarm_strip_html(alarms, _plant_clock()), unsafe_allow_html=True, width="content")
        if any(a.state == "active" for a in alarms):
            st.page_link(f"{_VIEWS}/alarms.py", label="Open the alarm list", icon=":material/arrow_forward:")


def main() -> None:
    st.set_page_config(page_title="GenEdge plant", page_icon=_ui.FAVICON_SVG, layout="wide")
    try:
        ctx.load_settings(ctx.config_path(sys.argv[1:]))
    except ConfigError as err:
        st.error(f"Cannot load the settings: {err}")
        st.stop()
    _warm_imports()
    user = ctx.current_user() or ctx.restore_session()
    ctx.write_session_cookie()
    if user is None:
        nav = st.navigation([st.Page(_sign_in_page, title="Sign in", icon=":material/login:")], position="hidden")
        nav.run()
        return
    nav = st.navigation(_pages(user))
    _ui.page_style()
    _ui.show_flash()
    _alarm_strip()
    with st.sidebar:
        st.caption(f"Signed in as **{user.name}** ({user.role.value})")
        clock = _plant_clock()
        if clock:
            st.caption(f"Simulated plant: {clock} (sim.time_acceleration {ctx.settings().sim.time_acceleration:g}). "
                       "RUL figures count plant hours; 'updated … ago' counts wall-clock time.")
        if st.button("Sign out", icon=":material/logout:", key="sign_out"):
            ctx.sign_out()
            st.rerun()
    nav.run()


main()
