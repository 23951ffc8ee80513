"""PostgreSQL and MariaDB as first-class sources: scan and export against the real local servers."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from servers import mariadb_database, postgres_database, run_sql

from connectors.base import SourceSpec
from connectors.options import SqlOptions
from discover.index import Index
from discover.inventory import inventory
from discover.scan import scan
from piiport.api import export_subject
from piiport.config import Config

pytestmark = pytest.mark.servers

PG_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS citext;
CREATE SCHEMA crm;
CREATE SCHEMA staff;
CREATE SCHEMA sales;
CREATE TABLE staff.employees (id int PRIMARY KEY, full_name text NOT NULL, email citext NOT NULL, phone text,
    manager_id int REFERENCES staff.employees(id));
CREATE TABLE crm.customers (id serial PRIMARY KEY, first_name text, last_name varchar(80), email citext,
    phone text, last_ip inet, prefs jsonb, tags text[], external_id uuid, balance numeric(12,2),
    created_at timestamptz, avatar bytea, support_rep_id int REFERENCES staff.employees(id));
CREATE TABLE sales.orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES crm.customers(id),
    placed_at timestamptz NOT NULL, total numeric(10,2) NOT NULL);
CREATE TABLE sales.order_lines (order_id int REFERENCES sales.orders(id), line_no int, sku text, qty int,
    PRIMARY KEY (order_id, line_no));
CREATE TABLE sales.shipments (id int PRIMARY KEY, order_id int, line_no int, carrier text,
    FOREIGN KEY (order_id, line_no) REFERENCES sales.order_lines(order_id, line_no));
CREATE TABLE public.tickets (id int PRIMARY KEY, customer_id int REFERENCES crm.customers(id), notes text);
CREATE TABLE public.visitors (visitor_ip inet, seen_at timestamptz);
CREATE TABLE public.sessions (token uuid NOT NULL UNIQUE, client cidr, started_at timestamptz);
CREATE VIEW crm.customer_emails AS SELECT id, email FROM crm.customers;
INSERT INTO staff.employees VALUES (1, 'Samuel Girard', 'samuel.girard@shop.example', '+33 1 42 68 53 00', NULL),
    (2, 'Talia Bonnet', 'talia.bonnet@shop.example', '+33 1 42 68 53 01', 1);
INSERT INTO crm.customers (first_name, last_name, email, phone, last_ip, prefs, tags, external_id, balance,
    created_at, avatar, support_rep_id) VALUES
  ('Alice', 'Martin', 'Alice.Martin@Example.com', '+33 6 12 34 56 78', '81.12.200.7',
   '{"newsletter": {"email": "alice.news@example.com"}, "lang": "fr"}', ARRAY['vip','fr'],
   '3f2b8c1e-7d4a-4b8e-9c1f-2a6d5e7f8a9b', 1234.50, '2026-01-05 10:22:01+01', '\\x89504e47', 1),
  ('Bruno', 'Dubois', 'bruno.dubois@example.org', '06 23 45 67 89', '2001:db8::7',
   '{"newsletter": {"email": "bruno.dubois@example.org"}}', ARRAY['new'],
   'a1b2c3d4-e5f6-47a8-b9c0-d1e2f3a4b5c6', 0.00, '2026-02-11 08:00:00+00', NULL, 2);
INSERT INTO sales.orders VALUES (10, 1, '2026-03-01 12:00:00+00', 39.80), (11, 1, '2026-03-02 12:00:00+00', 349.00),
    (12, 2, '2026-03-03 12:00:00+00', 4.50);
INSERT INTO sales.order_lines VALUES (10, 1, 'SKU-1', 2), (10, 2, 'SKU-2', 1), (11, 1, 'SKU-3', 1), (12, 1, 'SKU-1', 1);
INSERT INTO sales.shipments VALUES (100, 10, 1, 'La Poste'), (101, 10, 2, 'DHL'), (102, 12, 1, 'UPS');
INSERT INTO public.tickets VALUES (1, 1, 'Alice Martin asked for her invoices, phone +33 6 12 34 56 78.'),
    (2, 2, 'Parcel late; customer is fine with a voucher.');
INSERT INTO public.visitors VALUES ('81.12.200.7', '2026-04-01 10:00:00+00'), ('81.12.200.7', '2026-04-02 10:00:00+00'),
    ('92.168.10.20', '2026-04-02 11:00:00+00');
INSERT INTO public.sessions VALUES ('11111111-2222-4333-8444-555555555555', '81.12.200.7/32', now())
"""


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    with postgres_database() as url:
        run_sql(url, PG_SCHEMA)
        yield url


def _scan(url: str, index: Index, detector, name: str = "db", settings=None, **options) -> object:
    return scan(
        [SourceSpec(name=name, url=url, options=SqlOptions(**options))],
        index=index,
        detector=detector,
        settings=settings,
    )


def _inv(index: Index) -> set[tuple[str, str, str]]:
    return {(r.container, r.field, r.entity_type) for r in inventory(index)}


def test_postgres_scan_types_schemas_and_views(pg: str, index: Index, detector) -> None:
    result = _scan(pg, index, detector)
    assert result.ok, result.errors
    names = sorted(c.container for c in result.containers)
    assert names == [
        "crm.customers",
        "sales.order_lines",
        "sales.orders",
        "sales.shipments",
        "sessions",
        "staff.employees",
        "tickets",
        "visitors",
    ]  # all non-system schemas, no view
    found = _inv(index)
    assert {
        ("crm.customers", "email", "EMAIL_ADDRESS"),  # citext
        ("crm.customers", "phone", "PHONE_NUMBER"),
        ("crm.customers", "last_ip", "IP_ADDRESS"),  # inet, v4 and v6
        ("crm.customers", "prefs.newsletter.email", "EMAIL_ADDRESS"),  # jsonb, per JSON path
        ("crm.customers", "first_name", "PERSON"),
        ("visitors", "visitor_ip", "IP_ADDRESS"),
        ("sessions", "client", "IP_ADDRESS"),  # cidr
        ("staff.employees", "email", "EMAIL_ADDRESS"),
        ("tickets", "notes", "PHONE_NUMBER"),
    } <= found
    assert not {f for f in found if f[1] in {"external_id", "balance", "created_at", "tags[]", "token"}}
    customers = next(c for c in result.containers if c.container == "crm.customers")
    assert customers.skipped_fields == ["avatar"]  # bytea is counted, not scanned
    ips = {r.examples for r in inventory(index) if r.field == "last_ip"}
    assert ips == {("81.12.*.*", "2001:***")}


def test_postgres_include_exclude_on_schema_table(pg: str, index: Index, detector) -> None:
    result = scan(
        [SourceSpec(name="db", url=pg, include=("sales.*", "public.tickets"), exclude=("*.shipments",))],
        index=index,
        detector=detector,
    )
    assert sorted(c.container for c in result.containers) == ["sales.order_lines", "sales.orders", "tickets"]
    views = scan(
        [SourceSpec(name="v", url=pg, include=("crm.*",), options=SqlOptions(views=True))],
        index=index,
        detector=detector,
    )
    assert sorted(c.container for c in views.containers) == ["crm.customer_emails", "crm.customers"]


def test_postgres_export_across_schemas_and_composite_keys(pg: str, index: Index, detector, tmp_path: Path) -> None:
    _scan(pg, index, detector)
    result = export_subject(
        config=Config(), index=index, emails=["alice.martin@example.com"], fmt="parquet", out=tmp_path
    )
    assert result.ok, result.errors
    counts = {f["container"]: f["records"] for f in result.manifest["files"]}
    assert counts == {
        "crm.customers": 1,
        "sales.orders": 2,
        "sales.order_lines": 3,
        "sales.shipments": 2,
        "tickets": 1,
        "visitors": 2,
        "sessions": 1,
    }
    package = Path(result.package)
    files = {f["container"]: package / f["path"] for f in result.manifest["files"]}
    customer = pq.read_table(files["crm.customers"]).to_pylist()[0]
    assert customer["balance"] == decimal.Decimal("1234.50")
    assert customer["created_at"] == dt.datetime(2026, 1, 5, 9, 22, 1, tzinfo=dt.timezone.utc)
    assert customer["avatar"] == b"\x89PNG" and customer["last_ip"] == "81.12.200.7"
    assert json.loads(customer["prefs"])["newsletter"]["email"] == "alice.news@example.com"
    schema = pq.read_table(files["crm.customers"]).schema
    assert str(schema.field("balance").type) == "decimal128(12, 2)"
    assert str(schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    shipments = pq.read_table(files["sales.shipments"]).to_pylist()
    assert sorted(s["carrier"] for s in shipments) == ["DHL", "La Poste"]
    assert "staff.employees" not in counts  # the support rep's own record stays out
    visitors = pq.read_table(files["visitors"]).to_pylist()
    locator = json.loads(visitors[0]["_piiport_locator"])
    assert locator["kind"] == "row_hash" and locator["weak"] is True  # no key: located by content
    sessions = json.loads(pq.read_table(files["sessions"]).to_pylist()[0]["_piiport_locator"])
    assert sessions["kind"] == "unique_index" and sessions["key"] == ["11111111-2222-4333-8444-555555555555"]


def test_postgres_permission_denied_on_one_table(pg: str, index: Index, detector, settings) -> None:
    import uuid

    role = f"piiport_r_{uuid.uuid4().hex[:8]}"
    run_sql(
        pg,
        f"""
        CREATE ROLE {role} LOGIN;
        GRANT USAGE ON SCHEMA crm, staff, sales, public TO {role};
        GRANT SELECT ON ALL TABLES IN SCHEMA crm, staff, sales, public TO {role};
        REVOKE SELECT ON staff.employees FROM {role}
    """,
    )
    try:
        url = pg.replace("postgres@", f"{role}@")
        result = _scan(url, index, detector, settings=settings)
        assert [e["container"] for e in result.errors] == ["staff.employees"]
        error = result.errors[0]["error"]
        assert "permission denied for table employees" in error and "grant the scanning user SELECT" in error
        assert next(c for c in result.containers if c.container == "crm.customers").records == 2
        # Nothing already indexed is lost: the good tables' findings are in the index.
        assert index.findings_for([index.ident("EMAIL_ADDRESS", "bruno.dubois@example.org")])
        stored = {c["name"]: c for c in index.containers()}
        assert stored["staff.employees"]["error"] == error and stored["crm.customers"]["records"] == 2
    finally:
        run_sql(pg, f"REASSIGN OWNED BY {role} TO postgres;\nDROP OWNED BY {role};\nDROP ROLE {role}")


def test_server_down_and_password_never_shown(index: Index, detector, settings) -> None:
    url = "postgresql+psycopg://piiport:s3cr3t-pw@127.0.0.1:1/nothing"
    result = _scan(url, index, detector, name="down", settings=settings, connect_timeout=2)
    (error,) = result.errors
    assert error["source"] == "down" and "check that the server is running and the URL is right" in error["error"]
    assert "s3cr3t" not in json.dumps(result.as_dict())
    my = _scan(
        "mysql+pymysql://root:s3cr3t-pw@127.0.0.1:1/x",
        index,
        detector,
        name="mydown",
        settings=settings,
        connect_timeout=2,
    )
    assert "check that the server is running" in my.errors[0]["error"] and "s3cr3t" not in json.dumps(my.as_dict())


def test_postgres_connection_dropped_mid_scan_is_retried(index: Index, detector, caplog, workers: int) -> None:
    with postgres_database() as url:
        run_sql(
            url,
            "CREATE TABLE people (id int PRIMARY KEY, email text);\n"
            "INSERT INTO people SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 600) g",
        )
        killed = []

        def progress(event: str, data: dict) -> None:
            if event == "records" and not killed:
                # A short outage: connections refused for 0.3 s, the open one killed.
                _allow_connections(url, False)
                killed.append(_terminate(url))
                threading.Timer(0.3, _allow_connections, (url, True)).start()

        from discover.settings import ScanSettings

        result = scan(
            [SourceSpec(name="db", url=url, options=SqlOptions(retry_delay=0.1))],
            index=index,
            detector=detector,
            # With a pool, key ranges of 50 rows: units still to read when the first one is written.
            settings=ScanSettings(batch_size=100, workers=workers, unit_rows=50),
            progress=progress,
        )
        assert len(killed) == 1 and result.ok, result.errors
        assert result.containers[0].records == 600
        assert len(index.findings_for([index.ident("EMAIL_ADDRESS", "user600@example.com")])) == 1
        if workers == 1:  # a pool worker logs its retries in its own process
            assert killed == [1]
            assert "source db, table people: connection lost; retry 1 in 0.1s" in caplog.text


def _allow_connections(url: str, allow: bool) -> None:
    base, name = url.rsplit("/", 1)
    run_sql(base + "/postgres", f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')


def test_postgres_connection_lost_for_good_gives_a_clear_error(index: Index, detector, workers: int) -> None:
    with postgres_database() as url:
        run_sql(
            url,
            "CREATE TABLE people (id int PRIMARY KEY, email text);\n"
            "INSERT INTO people SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 300) g;\n"
            "CREATE TABLE things_after (id int PRIMARY KEY, email text)",
        )
        blocked = threading.Event()

        def progress(event: str, data: dict) -> None:
            if event == "records" and not blocked.is_set():
                blocked.set()
                _allow_connections(url, False)
                _terminate(url)

        from discover.settings import ScanSettings

        result = scan(
            [SourceSpec(name="db", url=url, options=SqlOptions(retry_delay=0.01, retries=2))],
            index=index,
            detector=detector,
            settings=ScanSettings(batch_size=100, workers=workers, unit_rows=50),
            progress=progress,
        )
        errors = {e["container"]: e["error"] for e in result.errors}
        assert errors["people"] == (
            "source 'db', table people: the connection was lost and 2 retries failed; check the server and scan again"
        )
        assert "things_after" in errors  # the next table cannot connect either: reported, not a crash


def test_postgres_a_worker_that_opens_its_table_while_the_server_refuses_retries(index: Index) -> None:
    # With several workers, each opens (reflects) its table when its unit starts: a drop there
    # must get the reads' retries, not fail the container as "is the server running?".
    from connectors.base import ContainerRef
    from connectors.sql import SqlConnector

    with postgres_database() as url:
        run_sql(url, "CREATE TABLE people (id int PRIMARY KEY, email text)")
        connector = SqlConnector(SourceSpec(name="db", url=url, options=SqlOptions(retry_delay=0.2, retries=4)))
        _allow_connections(url, False)
        reopen = threading.Timer(0.5, _allow_connections, args=(url, True))
        reopen.start()
        try:
            with connector.open(ContainerRef(source="db", name="people", kind="table")) as reader:
                assert reader.ref.name == "people"
        finally:
            reopen.join()
            connector.close()


def _terminate(url: str) -> int:
    from sqlalchemy import create_engine, text

    name = url.rsplit("/", 1)[1]
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :n AND application_name = 'piiport'"
            ),
            {"n": name},
        ).scalar()
    admin.dispose()
    return int(n or 0)


def test_postgres_sample_is_random_not_the_first_rows(index: Index, detector) -> None:
    from connectors.base import connect

    with postgres_database() as url:
        run_sql(
            url,
            "CREATE TABLE big (id int PRIMARY KEY, v text);\n"
            "INSERT INTO big SELECT g, 'x' FROM generate_series(1, 20000) g;\nANALYZE big",
        )
        with connect(SourceSpec(name="db", url=url)) as conn:
            (ref,) = conn.containers()
            with conn.open(ref) as reader:
                ids = [json.loads(r.key)[0] for r in reader.sample(100)]
    assert len(ids) == 100 and max(ids) > 10000 and min(ids) < 10000 and sorted(ids) != list(range(1, 101))


def test_server_samples_without_an_integer_key_are_random_not_the_first_rows() -> None:
    """Text keys cannot be drawn at random values: TABLESAMPLE on PostgreSQL, a RAND() filter on MariaDB."""
    from connectors.base import connect

    for database, fill in (
        (postgres_database, "INSERT INTO big SELECT lpad(g::text, 6, '0'), 'x' FROM generate_series(1, 20000) g;"),
        (
            mariadb_database,
            "INSERT INTO big SELECT lpad(seq, 6, '0'), 'x' FROM seq_1_to_20000;",
        ),
    ):
        with database() as url:
            analyze = "ANALYZE big" if url.startswith("postgresql") else "ANALYZE TABLE big"
            run_sql(url, f"CREATE TABLE big (code varchar(6) PRIMARY KEY, v text);\n{fill}\n{analyze}")
            with connect(SourceSpec(name="db", url=url)) as conn:
                (ref,) = conn.containers()
                with conn.open(ref) as reader:
                    codes = sorted(int(json.loads(r.key)[0]) for r in reader.sample(100))
            assert len(set(codes)) == 100 and codes[0] < 10000 < codes[-1] and codes != list(range(1, 101)), url


MY_SCHEMA = """
CREATE TABLE employees (id int PRIMARY KEY, full_name varchar(100) NOT NULL, email varchar(200) NOT NULL,
    phone varchar(40), manager_id int, FOREIGN KEY (manager_id) REFERENCES employees(id));
CREATE TABLE customers (id int PRIMARY KEY AUTO_INCREMENT, first_name varchar(80), last_name varchar(80),
    email varchar(200), phone varchar(40), last_ip INET6, prefs JSON, external_id UUID, balance decimal(12,2),
    created_at datetime(6), avatar blob, support_rep_id int, FOREIGN KEY (support_rep_id) REFERENCES employees(id));
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, total decimal(10,2) NOT NULL,
    FOREIGN KEY (customer_id) REFERENCES customers(id));
CREATE TABLE order_lines (order_id int, line_no int, sku varchar(20), qty int, PRIMARY KEY (order_id, line_no),
    FOREIGN KEY (order_id) REFERENCES orders(id));
CREATE TABLE shipments (id int PRIMARY KEY, order_id int, line_no int, carrier varchar(40),
    FOREIGN KEY (order_id, line_no) REFERENCES order_lines(order_id, line_no));
CREATE TABLE visitors (visitor_ip varchar(45), seen_at datetime);
CREATE VIEW customer_emails AS SELECT id, email FROM customers;
INSERT INTO employees VALUES (1, 'Samuel Girard', 'samuel.girard@shop.example', '+33 1 42 68 53 00', NULL),
    (2, 'Talia Bonnet', 'talia.bonnet@shop.example', '+33 1 42 68 53 01', 1);
INSERT INTO customers (first_name, last_name, email, phone, last_ip, prefs, external_id, balance, created_at, avatar,
    support_rep_id) VALUES
  ('Alice', 'Martin', 'alice.martin@example.com', '+33 6 12 34 56 78', '::ffff:81.12.200.7',
   '{"newsletter": {"email": "alice.news@example.com"}}', '3f2b8c1e-7d4a-4b8e-9c1f-2a6d5e7f8a9b', 1234.50,
   '2026-01-05 10:22:01.250000', 'PNG', 1),
  ('Bruno', 'Dubois', 'bruno.dubois@example.org', '06 23 45 67 89', '2001:db8::7', '{"newsletter": {}}',
   'a1b2c3d4-e5f6-47a8-b9c0-d1e2f3a4b5c6', 0.00, '2026-02-11 08:00:00', NULL, 2);
INSERT INTO orders VALUES (10, 1, 39.80), (11, 1, 349.00), (12, 2, 4.50);
INSERT INTO order_lines VALUES (10, 1, 'SKU-1', 2), (10, 2, 'SKU-2', 1), (11, 1, 'SKU-3', 1), (12, 1, 'SKU-1', 1);
INSERT INTO shipments VALUES (100, 10, 1, 'La Poste'), (101, 10, 2, 'DHL'), (102, 12, 1, 'UPS');
INSERT INTO visitors VALUES ('81.12.200.7', '2026-04-01 10:00:00'), ('92.168.10.20', '2026-04-02 11:00:00')
"""


@pytest.fixture(scope="module")
def maria() -> Iterator[str]:
    with mariadb_database() as url:
        run_sql(url, MY_SCHEMA)
        yield url


def test_mariadb_scan_types(maria: str, index: Index, detector) -> None:
    result = _scan(maria, index, detector)
    assert result.ok, result.errors
    assert sorted(c.container for c in result.containers) == [
        "customers",
        "employees",
        "order_lines",
        "orders",
        "shipments",
        "visitors",
    ]  # no view, no other database
    found = _inv(index)
    assert {
        ("customers", "email", "EMAIL_ADDRESS"),
        ("customers", "phone", "PHONE_NUMBER"),
        ("customers", "last_ip", "IP_ADDRESS"),  # INET6
        ("customers", "prefs.newsletter.email", "EMAIL_ADDRESS"),  # JSON (a LONGTEXT on MariaDB)
        ("visitors", "visitor_ip", "IP_ADDRESS"),
        ("employees", "email", "EMAIL_ADDRESS"),
    } <= found
    assert not {f for f in found if f[1] in {"external_id", "balance", "created_at"}}
    assert next(c for c in result.containers if c.container == "customers").skipped_fields == ["avatar"]


def test_mariadb_export_with_composite_keys(maria: str, index: Index, detector, tmp_path: Path) -> None:
    _scan(maria, index, detector)
    result = export_subject(
        config=Config(), index=index, emails=["alice.martin@example.com"], fmt="parquet", out=tmp_path
    )
    assert result.ok, result.errors
    counts = {f["container"]: f["records"] for f in result.manifest["files"]}
    assert counts == {"customers": 1, "orders": 2, "order_lines": 3, "shipments": 2, "visitors": 1}
    package = Path(result.package)
    files = {f["container"]: package / f["path"] for f in result.manifest["files"]}
    customer = pq.read_table(files["customers"]).to_pylist()[0]
    assert customer["balance"] == decimal.Decimal("1234.50")
    assert customer["created_at"] == dt.datetime(2026, 1, 5, 10, 22, 1, 250000)
    assert str(pq.read_table(files["customers"]).schema.field("balance").type) == "decimal128(12, 2)"
    assert sorted(s["carrier"] for s in pq.read_table(files["shipments"]).to_pylist()) == ["DHL", "La Poste"]
    visitor = json.loads(pq.read_table(files["visitors"]).to_pylist()[0]["_piiport_locator"])
    assert visitor["kind"] == "row_hash" and visitor["weak"] is True


def test_mariadb_password_from_environment(maria: str, index: Index, detector, monkeypatch) -> None:
    monkeypatch.setenv("MYSQL_PWD", "wrong-password")
    result = _scan(maria, index, detector)  # root has no password: a password from MYSQL_PWD is used, and refused
    assert (
        result.errors
        and "Access denied" in result.errors[0]["error"]
        and "wrong-password" not in result.errors[0]["error"]
    )


def test_the_index_itself_on_postgres(shop_db: Path, tmp_path: Path, detector, monkeypatch) -> None:
    """A team keeps its index in PostgreSQL: scan, inventory and export work the same, keyed hashes only."""
    from sqlalchemy import create_engine, text

    from connectors.errors import ConfigError

    with postgres_database() as url:
        with pytest.raises(ConfigError, match="PIIPORT_INDEX_KEY"):
            Index(url)  # no key file beside a server index: the key must be given
        monkeypatch.setenv("PIIPORT_INDEX_KEY", "00112233445566778899aabbccddeeff")
        idx = Index(url)
        news = tmp_path / "news.db"
        with sqlite3.connect(news) as db:
            db.execute("CREATE TABLE subscribers (email TEXT PRIMARY KEY, full_name TEXT, phone TEXT)")
            db.executemany(
                "INSERT INTO subscribers VALUES (?, ?, ?)",
                [
                    ("zoe.quinn@example.net", "Zoe Quinn", "+44 20 7946 0101"),
                    ("yann.roux@example.net", "Yann Roux", ""),
                ],
            )
        try:
            sources = [
                SourceSpec(name="shop", url=f"sqlite:///{shop_db}"),
                SourceSpec(name="news", url=f"sqlite:///{news}"),
            ]
            result = scan(sources, index=idx, detector=detector)
            assert result.ok
            assert ("customers", "email", "EMAIL_ADDRESS") in _inv(idx)
            exported = export_subject(config=Config(), index=idx, emails=["alice.martin@example.com"], out=tmp_path)
            assert exported.found and exported.records == 7
            engine = create_engine(url)
            with engine.connect() as conn:
                dump = " ".join(str(r) for r in conn.execute(text("SELECT meta, data FROM blocks")))
                dump += " ".join(str(r) for r in conn.execute(text("SELECT entries FROM postings")))
            engine.dispose()
            assert "sealed:" in dump  # the keys of subscribers, an e-mail primary key
            assert "alice" not in dump.lower() and "zoe" not in dump.lower()
            alice = idx.ident("EMAIL_ADDRESS", "alice.martin@example.com")
            assert any(link["strength"] == "strong" for link in idx.links(alice))
            # The sealed primary key is opened again to read the row (found through the phone).
            zoe = export_subject(config=Config(), index=idx, phones=["+44 20 7946 0101"], out=tmp_path, request_id="z")
            assert zoe.records == 1 and not zoe.errors
        finally:
            idx.close()
