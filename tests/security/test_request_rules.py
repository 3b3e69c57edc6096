"""Every request field has a limit rule; the opaque-id codec is an exact per-tenant bijection; the malformed-request
log speaks once per peer host per interval and forgets the oldest peers first."""

from __future__ import annotations

import logging
import random

import pytest

from returnbridge.domain.tenant_ids import MAX_OPAQUE, TenantIds
from returnbridge.gateway.malformed import MalformedLog
from returnbridge.gateway.request_limits import RULES
from security.rpcs import api_rpcs


def test_every_field_of_every_request_has_a_rule() -> None:
    missing, stale = [], []
    for rpc in api_rpcs():
        request = rpc.method.input_type
        if request.full_name.startswith("grpc.reflection."):
            continue  # grpcio-reflection's own request, answered by its own servicer
        rules = RULES.get(request.full_name)
        assert rules is not None, f"{rpc.short}: no rules for {request.full_name}"
        fields = {f.name for f in request.fields}
        missing += [f"{request.full_name}.{name}" for name in sorted(fields - set(rules))]
        stale += [f"{request.full_name}.{name}" for name in sorted(set(rules) - fields)]
    assert missing == [] and stale == []


def test_opaque_ids_round_trip_and_differ_per_tenant_and_kind() -> None:
    ids = TenantIds(b"0123456789abcdef0123456789abcdef")
    rng = random.Random(12)
    positions = [1, 2, 3, 1000, MAX_OPAQUE, *(rng.randrange(1, MAX_OPAQUE) for _ in range(500))]
    for position in positions:
        token = ids.encode("acme", "dead_letter", position)
        assert 0 < token <= MAX_OPAQUE and ids.decode("acme", "dead_letter", token) == position
        assert token != ids.encode("beta", "dead_letter", position)
        assert token != ids.encode("acme", "event_sequence", position)
    # Consecutive positions do not give consecutive or ordered ids.
    tokens = [ids.encode("acme", "dead_letter", p) for p in range(1, 50)]
    assert len(set(tokens)) == 49 and tokens != sorted(tokens)
    assert ids.encode("acme", "dead_letter", 0) == 0 == ids.decode("acme", "dead_letter", 0)
    assert ids.decode("acme", "dead_letter", MAX_OPAQUE + 1) is None
    with pytest.raises(ValueError):
        ids.encode("acme", "dead_letter", MAX_OPAQUE + 1)
    # Another key (another deployment) reads the same token as something else.
    assert TenantIds(b"x" * 32).decode("acme", "dead_letter", tokens[0]) != 1


def test_malformed_log_is_once_per_host_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    log = MalformedLog(interval=3600, max_peers=3)
    with caplog.at_level(logging.WARNING, logger="returnbridge.gateway.malformed"):
        spoken = [log.note(f"ipv4:10.0.0.1:{port}", "/x.Y/Z") for port in range(1000, 1100)]
        assert spoken.count(True) == 1  # one host, whatever its source ports
        assert [log.note(f"ipv4:10.0.0.{n}:1", "/x.Y/Z") for n in (2, 3, 4)] == [True, True, True]
        # The table holds three hosts: 10.0.0.1 was forgotten first, so it is reported again.
        assert log.note("ipv4:10.0.0.1:5", "/x.Y/Z") is True
    assert len(caplog.records) == 5
    assert (
        MalformedLog.host_of("ipv6:[::1]:5000") == "ipv6:[::1]"
        and MalformedLog.host_of("unix:/s") == "unix:/s"
    )
