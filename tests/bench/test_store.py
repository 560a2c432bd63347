"""bench/store.py: with MONGO_URL every bench server role of every run gets a database of its own."""

from __future__ import annotations

import re

from bench.store import database_name, open_database, server_env


async def test_without_mongo_url_servers_use_their_embedded_store():
    assert server_env(1, "ours", {}) == {}
    db = open_database({"MONGO_DB": "bench_x"})
    await db.things.insert_one({"_id": 1})  # answers in-process: no server behind it
    assert db.name == "bench_x" and await db.things.count_documents({"_id": 1}) == 1


def test_with_mongo_url_each_role_of_each_run_gets_its_own_valid_database():
    env = {"MONGO_URL": "mongodb://db.example:27017/?replicaSet=rs0"}
    names = {server_env(run, role, env)["MONGO_DB"] for run in (1, 2, 3) for role in ("ours", "bare", "ours-storm")}
    assert len(names) == 9
    assert all(re.fullmatch(r"bench_\d+_\d_[A-Za-z0-9_]+", n) and len(n) <= 63 for n in names)
    assert server_env(1, "ours", env)["MONGO_URL"] == env["MONGO_URL"]
    assert database_name(7, "ours/../x", pid=42) == "bench_42_7_ours____x"
