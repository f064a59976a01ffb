"""scripts/deploy_da.py: the reusable deploy function (the `ape run deploy_da` CLI wraps it)."""

from __future__ import annotations

from da_contract_helpers import deploy_da_module


def test_deploy_da_defaults(owner, project):
    d = deploy_da_module.deploy_da(owner, project)
    registry = project.DASigners.at(d["da_signers"])
    entrance = project.DAEntrance.at(d["da_entrance"])
    assert entrance.signers() == registry.address
    assert tuple(registry.params()) == (10**18, 1024, 10, 5760, 3072)
    assert entrance.blobPrice() == d["blob_price"] == 10**15 and entrance.epochWindowSize() == 300
    assert d["admin"] == d["deployer"] == owner.address and d["chain_id"] > 0
    assert registry.hasRole(registry.PARAMS_ADMIN_ROLE(), owner)


def test_deploy_da_other_admin(owner, alice, project):
    d = deploy_da_module.deploy_da(owner, project, admin=alice.address, epoch_blocks=7, encoded_slices=96,
                                   blob_price=0, epoch_window=2)
    registry = project.DASigners.at(d["da_signers"])
    entrance = project.DAEntrance.at(d["da_entrance"])
    assert registry.params().epochBlocks == 7 and registry.params().encodedSlices == 96
    for c, roles in ((registry, ("DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE")),
                     (entrance, ("DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE", "PAUSER_ROLE"))):
        for role in roles:
            r = getattr(c, role)()
            assert c.hasRole(r, alice) and not c.hasRole(r, owner)
