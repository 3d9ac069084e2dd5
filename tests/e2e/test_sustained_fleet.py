"""A sustained run published to a collector: the per-interval series travels in its summary,
is stored with it, and the dashboard's run page draws it."""

import json

from edgebench.collector.ingest.collector import Collector
from edgebench.collector.store import SQLiteStore
from edgebench.collector.views.web import Dashboard
from tests.support.paths import SHAPES_MODEL, run_cli


def test_the_run_page_draws_a_stored_sustained_run(mosquitto, tmp_path):
    store = SQLiteStore(str(tmp_path / "fleet.db"))
    col = Collector(
        mosquitto.url, store, client_id=f"sus-{tmp_path.name}", group=f"g-{tmp_path.name}", session_expiry_s=0
    ).start()
    try:
        out = tmp_path / "r.json"
        r = run_cli(
            "run", "--model", str(SHAPES_MODEL), "--scenario", "sustained", "--duration", "4", "--interval", "1",
            "--threads", "1", "--mqtt", mosquitto.url, "--device-id", "sus-dev", "--json", str(out), "-q",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        run_id = json.loads(out.read_text())["run_id"]
        assert col.wait_for(
            lambda: store.query("SELECT COUNT(*) FROM runs WHERE run_id = ? AND summary IS NOT NULL", (run_id,))[0][0],
            30,
        )
    finally:
        col.stop()
    stored = json.loads(store.query("SELECT summary FROM runs WHERE run_id = ?", (run_id,))[0][0])
    assert len(stored["sustained"]["intervals"]) == 4
    page = Dashboard(store).handle(f"/run/sus-dev/{run_id}", "")[2].decode()
    assert "<h2>Sustained</h2>" in page and 'id="sustained"' in page and "Sustained: FPS per 1 s interval" in page
    assert page.count("<tr>") >= 4
    store.close()
