"""The generated code in grpcapi/gen matches proto/maglev.proto (run scripts/gen-proto if not)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

GENERATED = ("maglev_pb2.py", "maglev_pb2_grpc.py", "maglev_pb2.pyi")


def test_generated_code_is_up_to_date(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        [str(REPO / "scripts" / "gen-proto"), str(tmp_path)], check=True, env=env, timeout=60
    )
    stale = [
        name
        for name in GENERATED
        if (tmp_path / name).read_bytes() != (REPO / "grpcapi" / "gen" / name).read_bytes()
    ]
    assert not stale, f"run scripts/gen-proto: {', '.join(stale)} differ from proto/maglev.proto"


def test_the_generated_code_imports_as_a_package():
    from grpcapi.gen import maglev_pb2, maglev_pb2_grpc

    assert maglev_pb2_grpc.maglev__pb2 is maglev_pb2
    assert maglev_pb2.DESCRIPTOR.package == "maglev.v1"
