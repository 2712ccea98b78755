"""Random and hostile YAML through gRPC CheckConfig: a bounded verdict, and the server lives."""

from __future__ import annotations

import pytest
from hypothesis import given

from grpcapi.gen import maglev_pb2 as pb
from health.config.errors import MAX_ISSUES
from tests.health.test_hostile_yaml import DOOR, hostile

pytestmark = pytest.mark.django_db(transaction=True)


@DOOR
@given(text=hostile)
def test_grpc_check_config_gives_a_verdict(server, text):
    stub = server.anonymous
    r = stub.CheckConfig(pb.CheckConfigRequest(text=text), timeout=5)
    assert r.valid or 1 <= len(r.issues) <= MAX_ISSUES + 1
    assert stub.GetVersion(pb.GetVersionRequest(), timeout=1).program
