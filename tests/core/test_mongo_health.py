"""Which driver errors mean "MongoDB unavailable", the one-line reasons, and the client's bounds."""

from __future__ import annotations

from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from core.clients import mongo_options
from core.mongo_health import is_unavailable, mongo_hosts, short_reason
from tests.conftest import make_settings


def test_outages_timeouts_and_elections_are_unavailable_but_data_errors_are_not():
    for exc in (ServerSelectionTimeoutError("x"), AutoReconnect("x"), NetworkTimeout("x"), NotPrimaryError("x"),
                ExecutionTimeout("x", 50), OperationFailure("not primary", 10107),
                OperationFailure("stepped down", 189), OperationFailure("shutting down", 91),
                OperationFailure("whatever", 1, {"errorLabels": ["RetryableWriteError"]})):
        assert is_unavailable(exc), exc
    for exc in (DuplicateKeyError("dup", 11000), WriteError("bad", 2), OperationFailure("bad query", 2),
                ValueError("x"), None):
        assert not is_unavailable(exc), exc


def test_the_reason_is_one_short_line_without_the_topology_dump():
    exc = ServerSelectionTimeoutError(
        "127.0.0.1:27017: [Errno 111] Connection refused (configured timeouts: socketTimeoutMS: 20000.0ms, "
        "connectTimeoutMS: 20000.0ms), Timeout: 3.0s, Topology Description: <TopologyDescription id: 1, "
        "topology_type: Unknown, servers: [<ServerDescription ('127.0.0.1', 27017) server_type: Unknown>]>")
    assert short_reason(exc) == "[Errno 111] Connection refused"
    assert short_reason(AutoReconnect("")) == "AutoReconnect"


def test_hosts_are_logged_without_credentials_or_options():
    assert mongo_hosts("mongodb://app:s3cret@db1:27017,db2:27017/rsb?replicaSet=rs0") == "db1:27017,db2:27017"
    assert mongo_hosts("mongodb+srv://u:p@cluster.example.net/?retryWrites=true") == "cluster.example.net"
    assert mongo_hosts("mongodb://mongo:27017/?replicaSet=rs0") == "mongo:27017"


def test_the_client_bounds_every_operation_and_writes_to_a_majority_on_the_primary():
    options = mongo_options(make_settings(mongo_server_selection_timeout_ms=2500, mongo_operation_timeout_ms=4000))
    assert options["serverSelectionTimeoutMS"] == 2500 and options["timeoutMS"] == 4000
    assert (options["w"], options["readPreference"]) == ("majority", "primary")
    assert options["retryWrites"] is True and options["retryReads"] is True
