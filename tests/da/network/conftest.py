"""Fixtures for the DA end-to-end tests (helpers in da_network_helpers.py).

The DA node processes act on the test chain on their own schedule (epoch registrations), so ape's
per-test and per-module chain snapshots are turned off here: reverting the chain under running nodes
would drop their transactions. The modules of this folder share one chain history and one DA network
(starting it — contracts, six node processes, the KZG setup — is the expensive part): `net` deploys the DA
contracts and starts six `deaios da node` processes (`FAULTS`: one withholds retrievals, one serves garbage
cells), then starts epoch 1. A module that changes the epoch's quorum puts it back before it ends.
"""

from __future__ import annotations

import ape
import pytest
from da_network_helpers import start_nodes

from deaios.da.chain import DAChain
from deaios.da.client import DAClient
from deaios.da.encoding import Encoder
from deaios.deployment import load_script

FAULTS = ["none", "none", "none", "none", "withhold", "garbage"]


@pytest.fixture
def _function_isolation():
    """No per-test snapshot/revert (overrides ape's fixture of that name for this folder)."""
    yield


@pytest.fixture(scope="module")
def _module_isolation():
    """No per-module snapshot/revert either: the session's DA network lives across the modules."""
    yield


@pytest.fixture(scope="session")
def net(accounts, project, tmp_path_factory):
    faults = FAULTS
    owner = accounts[0]
    d = load_script("deploy_da").deploy_da(owner, project, epoch_blocks=10**6, blob_price=10**12)
    rpc = ape.chain.provider.http_uri
    keys = [accounts[i].private_key for i in range(4, 4 + len(faults))]
    nodes = start_nodes(rpc, d["da_entrance"], keys, tmp_path_factory.mktemp("da"), faults)
    registry = project.DASigners.at(d["da_signers"])
    registry.forceMakeEpoch(sender=owner)
    epoch = registry.epochNumber()
    assert registry.quorumCount(epoch) == 1
    client_key = accounts[3].private_key
    yield {"deployment": d, "rpc": rpc, "nodes": nodes, "registry": registry, "owner": owner, "epoch": epoch,
           "entrance": project.DAEntrance.at(d["da_entrance"]), "chain": DAChain(rpc, d["da_entrance"], client_key),
           "key": client_key}
    for n in nodes:
        n.stop()


@pytest.fixture(scope="session")
def client(net):
    with Encoder(1) as encoder:
        yield DAClient(net["chain"], encoder)
