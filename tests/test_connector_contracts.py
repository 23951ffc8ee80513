"""The connector layer's contracts: connectors found through entry points, typed options that the
config file is checked against, secrets kept out of reprs, and errors that survive pickling."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from connectors.base import SourceSpec, connect, known_schemes
from connectors.errors import ConfigError, PiiportError, SourceError
from connectors.options import S3Options, SourceOptions, SqlOptions
from discover.index import Index
from discover.inventory import inventory
from discover.scan import scan
from discover.settings import ScanSettings
from piiport.config import load_config

# A connector as a third party would write it, in its own distribution: nothing of piiport is
# changed to make `memo://` a source.
MEMO_MODULE = """
from dataclasses import dataclass

from connectors.base import Connector, ContainerReader, ContainerRef, Record
from connectors.options import SourceOptions


@dataclass(frozen=True)
class MemoOptions(SourceOptions):
    greeting: str = "hello"


ROWS = {
    "notes": [
        Record("1", {"author": "Alice Martin", "email": "alice.martin@example.com"}),
        Record("2", {"author": "Bob Stone", "email": "bob.stone@example.org"}),
    ]
}


class MemoReader(ContainerReader):
    def sample(self, size, *, seed=0):
        return ROWS[self.ref.name][:size]

    def batches(self, batch_size):
        rows = ROWS[self.ref.name]
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]

    def fetch(self, keys):
        for record in ROWS[self.ref.name]:
            if record.key in keys:
                yield record.key, dict(record.values)


class MemoConnector(Connector):
    options_type = MemoOptions

    def containers(self):
        for name in ROWS:
            if self.spec.selects(name):
                yield ContainerRef(self.spec.name, name, "table")

    def open(self, ref):
        return MemoReader(ref)
"""


def _install_distribution(site: Path, monkeypatch: pytest.MonkeyPatch, entry_points: str) -> None:
    """A distribution on sys.path, as pip leaves one: a module and its dist-info with entry points."""
    site.mkdir()
    (site / "piiport_memo.py").write_text(textwrap.dedent(MEMO_MODULE), encoding="utf-8")
    info = site / "piiport_memo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: piiport-memo\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))


@pytest.fixture
def memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_distribution(tmp_path / "site", monkeypatch, "[piiport.connectors]\nmemo = piiport_memo:MemoConnector\n")


def test_a_third_party_connector_registered_by_entry_point_is_scanned(memo: None, index: Index, detector) -> None:
    assert "memo" in known_schemes() and "sqlite" in known_schemes()
    result = scan(
        [SourceSpec(name="m", url="memo://notes")], index=index, detector=detector, settings=ScanSettings(workers=1)
    )
    assert result.ok, result.errors
    assert [(c.container, c.records) for c in result.containers] == [("notes", 2)]
    found = {(r.source, r.container, r.field, r.entity_type) for r in inventory(index)}
    assert ("m", "notes", "email", "EMAIL_ADDRESS") in found
    assert len(index.findings_for([index.ident("EMAIL_ADDRESS", "alice.martin@example.com")])) == 1


def test_a_third_party_connector_s_options_are_checked_by_the_config(memo: None, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("sources:\n  - url: memo://notes\n    greeting: bonjour\n    max_concurrency: 2\n")
    [spec] = load_config(good).sources
    assert type(spec.options).__name__ == "MemoOptions"
    assert (spec.options.greeting, spec.options.max_concurrency) == ("bonjour", 2)  # type: ignore[attr-defined]
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - url: memo://notes\n    retries: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert caught.value.message == (
        f"config {bad}: unknown setting in sources[0]: 'retries'; "
        "allowed: exclude, greeting, include, language, max_concurrency, name, path, url"
    )


def test_an_unknown_scheme_lists_the_known_ones_in_one_line() -> None:
    with pytest.raises(SourceError) as caught:
        connect(SourceSpec(name="x", url="nosuch://host/db"))
    message = caught.value.message
    assert message.startswith("source 'x': unknown URL scheme 'nosuch'; known schemes: file, mariadb, mssql, mysql,")
    assert "postgresql, s3, sqlite" in message and "\n" not in message


def test_a_broken_third_party_connector_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_distribution(
        tmp_path / "site",
        monkeypatch,
        "[piiport.connectors]\ngone = piiport_gone:Connector\nodd = piiport_memo:ROWS\n",
    )
    with pytest.raises(SourceError) as missing:
        connect(SourceSpec(name="g", url="gone://x"))
    assert missing.value.message == (
        "source 'g': the connector for 'gone' (piiport_gone:Connector) cannot be loaded: "
        "ModuleNotFoundError: No module named 'piiport_gone'; reinstall the package that provides it"
    )
    with pytest.raises(SourceError) as odd:
        connect(SourceSpec(name="o", url="odd://x"))
    assert "is not a Connector subclass" in odd.value.message


# -- typed options --------------------------------------------------------------------------------


def test_source_options_come_from_their_dataclass(tmp_path: Path) -> None:
    path = tmp_path / "piiport.yaml"
    path.write_text(
        "sources:\n"
        "  - url: postgresql://u@h/db\n    schemas: crm\n    retry_delay: 2\n    changed_column: {orders: at}\n"
        "  - url: s3://bucket/p\n    region: eu-west-3\n    read_timeout: 5\n"
        "  - url: ./files\n"
        "s3:\n  endpoint_url: http://127.0.0.1:9000\n  region: us-east-1\n"
    )
    sql, s3, files = load_config(path).sources
    assert sql.options == SqlOptions(schemas=("crm",), retry_delay=2.0, changed_column={"orders": "at"})
    assert isinstance(sql.options, SqlOptions) and sql.options.changed_column_of("orders") == "at"
    assert sql.options.changed_column_of("customers") is None
    # The s3 section fills in what the source leaves out; the source's own region wins.
    assert s3.options == S3Options(region="eu-west-3", endpoint_url="http://127.0.0.1:9000", read_timeout=5.0)
    assert files.options == SourceOptions()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("views: yes-please", "sources[0].views must be true or false"),
        ("retries: 2.5", "sources[0].retries must be a whole number"),
        ("schemas: {a: b}", "sources[0].schemas must be a list of strings"),
        ("changed_column: [a]", "sources[0].changed_column must be a column name (changed_column: updated_at)"),
        ("max_concurrency: 0", "sources[0].max_concurrency must be a whole number of at least 1"),
    ],
)
def test_a_source_option_of_the_wrong_type_is_one_line(tmp_path: Path, option: str, message: str) -> None:
    path = tmp_path / "piiport.yaml"
    path.write_text(f"sources:\n  - url: sqlite:///x.db\n    {option}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.message.startswith(f"config {path}: {message}")
    assert "\n" not in caught.value.message


def test_options_meant_for_another_kind_of_source_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        connect(SourceSpec(name="db", url="sqlite:///x.db", options=S3Options(region="eu-west-3")))
    assert caught.value.message == "source 'db': S3Options given to a source that takes SqlOptions"


def test_no_repr_shows_a_password_or_the_index_key() -> None:
    spec = SourceSpec(name="db", url="postgresql://scan:p@ss:w0rd@db.internal/crm", options=SqlOptions(retries=2))
    assert "w0rd" not in repr(spec) and "p@ss" not in repr(spec)
    assert "postgresql://scan:***@db.internal/crm" in repr(spec) and "retries=2" in repr(spec)
    assert "w0rd" not in repr((spec,)) and "w0rd" not in str([spec])
    from connectors.base import ContainerRef
    from discover.scan import UnitTask
    from discover.settings import DetectionSettings

    secret = b"k3y-k3y-k3y-k3y-k3y-k3y"
    task = UnitTask(spec, ContainerRef("db", "t", "table"), None, {}, DetectionSettings(), 100, secret)
    assert "k3y" not in repr(task) and "w0rd" not in repr(task) and "batch_size=100" in repr(task)
    from piiport.config import Config

    config = Config(index="postgresql://piiport:s3cret@db/index", sources=(spec,))
    assert "s3cret" not in repr(config) and "w0rd" not in repr(config) and "name='db'" in repr(config)


# -- errors survive pickling -----------------------------------------------------------------------


def _all_errors() -> list[type[PiiportError]]:
    """Every PiiportError subclass the four packages define (their modules all imported)."""
    for package in ("connectors", "discover", "export", "piiport"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            importlib.import_module(info.name)
    found: list[type[PiiportError]] = []
    todo: list[type[PiiportError]] = [PiiportError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _argument(parameter: inspect.Parameter) -> Any:
    annotation = str(parameter.annotation)
    if "int" in annotation:
        return 7
    if "float" in annotation:
        return 1.5
    if "bool" in annotation:
        return True
    return f"the {parameter.name}"


def test_every_error_survives_pickling() -> None:
    errors = _all_errors()
    assert {"S3Error", "SourceError", "ConfigError"} <= {c.__name__ for c in errors}
    for cls in errors:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        args, kwargs = [], {}
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.kind == p.KEYWORD_ONLY:
                kwargs[p.name] = _argument(p)
            else:
                args.append("the message" if not args else _argument(p))
        error = cls(*args, **kwargs)
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is cls
        assert str(back) == str(error), cls
        assert vars(back) == vars(error), cls


@pytest.mark.parametrize(
    ("code", "transient", "hint"),
    [
        ("SlowDown", True, "the store kept answering SlowDown after retries; try again later"),
        ("503", True, "the store kept answering 503 after retries; try again later"),
        ("NoSuchBucket", False, "bucket b does not exist; check the URL and region"),
        ("AccessDenied", False, "access denied (AccessDenied)"),
    ],
)
def test_s3_errors_are_classified_by_their_code(code: str, transient: bool, hint: str) -> None:
    from botocore.exceptions import ClientError

    from connectors.s3 import translate

    answer: Any = {"Error": {"Code": code, "Message": "Please reduce your request rate."}}
    error = translate(ClientError(answer, "GetObject"), where="s3://b/k", bucket="b", source="s")
    assert (error.code, error.transient) == (code, transient)
    assert error.message.startswith(f"s3://b/k: {hint}")
    back = pickle.loads(pickle.dumps(error))
    assert (back.code, back.transient, back.source, back.message) == (code, transient, "s", error.message)
