"""Leader election's decision: who may write the Lease, and when a standby takes over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ouroboros.operator import leader
from ouroboros.operator.leader import LeaseState, Step
from ouroboros.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("lease", "expected"), [
    (None, Step.CREATE),
    (LeaseState("me", NOW - timedelta(seconds=100), 15), Step.RENEW),  # mine, even if late: renew
    (LeaseState("other", NOW - timedelta(seconds=5), 15), Step.WAIT),
    (LeaseState("other", NOW - timedelta(seconds=15), 15), Step.TAKE_OVER),  # expired exactly at the duration
    (LeaseState("other", NOW - timedelta(seconds=14.9), 15), Step.WAIT),
    (LeaseState(None, NOW, 15), Step.TAKE_OVER),  # released on a clean shutdown
    (LeaseState("other", None, 15), Step.TAKE_OVER),
])
def test_decide(lease, expected):
    assert leader.decide(lease, "me", NOW) is expected


def test_parse_lease_reads_micro_time_and_empty_holders():
    state = leader.parse_lease({"spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15,
                                         "renewTime": "2026-11-30T06:00:00.123456Z"}})
    assert state == LeaseState("pod-a", datetime(2026, 11, 30, 6, 0, 0, 123456, tzinfo=UTC), 15.0)
    assert leader.parse_lease({"spec": {"holderIdentity": ""}}).holder is None
    assert leader.parse_lease(None) is None


def test_settings_from_env():
    off = OperatorSettings.from_env({})
    assert off.leader_election.enabled is False
    on = OperatorSettings.from_env({"OURO_LEADER_ELECTION": "true", "OURO_LEASE_NAMESPACE": "ouro",
                                    "OURO_POD_NAME": "op-1", "OURO_LEASE_DURATION_SECONDS": "6"})
    election = on.leader_election
    assert (election.enabled, election.lease_namespace, election.identity) == (True, "ouro", "op-1")
    assert election.lease_duration_s == 6 and election.renew_deadline_s == 4  # always under the duration


@pytest.mark.parametrize(("env", "message"), [
    ({"OURO_LEADER_ELECTION": "maybe"}, "OURO_LEADER_ELECTION: 'maybe' is not a boolean"),
    ({"OURO_LEADER_ELECTION": "true"}, "OURO_LEASE_NAMESPACE: required when OURO_LEADER_ELECTION is true"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        OperatorSettings.from_env(env)


def test_the_elector_refuses_a_deadline_past_the_duration():
    with pytest.raises(ValueError, match="renew deadline must be shorter than the lease duration"):
        leader.LeaderElector(kube=None, config=leader.ElectionConfig(  # type: ignore[arg-type]
            namespace="n", identity="a", lease_duration_s=10, renew_deadline_s=10))
