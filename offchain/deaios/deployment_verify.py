"""Checking a deployment against the build and against what each area declares (`ape run verify_deployment`).

`DeploymentCheck` collects differences instead of stopping at the first one, so one run lists everything that is
wrong. Two kinds of checks:

* **code**, for every contract of the record (`check_code`): the runtime code at its address equals the build's
  runtime bytecode except inside immutable slots (solc leaves 32 zero bytes after a PUSH32 for each immutable and
  the constructor fills them in, so those windows may differ and nothing else may); and the creation transaction's
  input is exactly the build's creation bytecode followed by the recorded constructor arguments, ABI-encoded —
  which pins the immutables too;
* **wiring, roles and parameters**, declared by each area next to its deploy function
  (`check_deployment(check)` in `scripts/deploy_<area>.py`), with `equal`, `role` and `admin_roles`.

The area functions receive this object; they name contracts by their public record names (`flow`,
`compute_ledger`, …) and read their area's parameters with `area(name)`.
"""

from __future__ import annotations

from typing import Any

from deaios.deployment_record import DeploymentRecord, is_address

PUSH1, PUSH32 = 0x60, 0x7F


def immutable_windows(code: bytes) -> list[tuple[int, int]]:
    """[start, end) byte ranges of the zero immediates of PUSH32 instructions: where solc's runtime code keeps an
    immutable's placeholder."""
    windows = []
    i = 0
    while i < len(code):
        op = code[i]
        if PUSH1 <= op <= PUSH32:
            width = op - PUSH1 + 1
            if op == PUSH32 and code[i + 1:i + 33] == bytes(32):
                windows.append((i + 1, i + 33))
            i += 1 + width
        else:
            i += 1
    return windows


def code_difference(built: bytes, deployed: bytes) -> str | None:
    """None when `deployed` is `built` with (only) its immutable slots filled in; else what differs."""
    if len(built) != len(deployed):
        return f"runtime code is {len(deployed)} bytes, the build's is {len(built)}"
    allowed = immutable_windows(built)
    j = 0
    for i, (a, b) in enumerate(zip(built, deployed)):
        if a == b:
            continue
        while j < len(allowed) and allowed[j][1] <= i:
            j += 1
        if not (j < len(allowed) and allowed[j][0] <= i < allowed[j][1]):
            return f"runtime code differs from the build at byte {i}"
    return None


def _same(actual: Any, expected: Any) -> bool:
    if is_address(actual) and is_address(expected):
        return actual.lower() == expected.lower()
    if isinstance(actual, (bytes, bytearray)) and isinstance(expected, str):
        return "0x" + bytes(actual).hex() == expected.lower()
    return actual == expected


class DeploymentCheck:
    """The verification of one deployment record against the chain `provider` is connected to."""

    def __init__(self, record: DeploymentRecord, project: Any, provider: Any) -> None:
        self.record = record
        self.project = project
        self.provider = provider
        self.differences: list[str] = []
        self.checks = 0
        self._area = "?"
        self._names = {v.lower(): k for k, v in record.addresses().items()}

    # -- what area checks use -------------------------------------------------------------------------------
    def start_area(self, name: str) -> None:
        self._area = name

    def differ(self, message: str) -> None:
        self.differences.append(f"{self._area}: {message}")

    def area(self, name: str) -> dict[str, Any]:
        """The area's own record (its parameters and the addresses it was given)."""
        return dict((self.record.data.get("areas") or {}).get(name) or {})

    def name_of(self, address: str) -> str:
        return self._names.get(address.lower(), address)

    def at(self, address: str) -> Any:
        """The contract at `address` with the type this record deployed there."""
        found = self.record.step_at(address)
        if found is None:
            raise KeyError(f"{address} was not deployed by this record")
        return getattr(self.project, found[1]["contract_type"]).at(address)

    def contract(self, name: str) -> Any | None:
        """The record's contract `name` (e.g. "flow"), or None (and a difference) when it has none."""
        address = self.record.data.get(name)
        entry = (self.record.data.get("contracts") or {}).get(name)
        if not is_address(address) or entry is None:
            self.differ(f"the record has no contract {name!r}")
            return None
        return getattr(self.project, entry["contract_type"]).at(address)

    def equal(self, what: str, actual: Any, expected: Any) -> None:
        self.checks += 1
        if not _same(actual, expected):
            self.differ(f"{what} is {actual!r}, expected {expected!r}")

    def role(self, contract: Any, contract_name: str, role: str, account: str, account_name: str | None = None,
             expected: bool = True) -> None:
        """`account` holds (or, with expected=False, does not hold) `role` (a constant's name) on `contract`."""
        self.checks += 1
        has = bool(contract.hasRole(getattr(contract, role)(), account))
        if has != expected:
            who = account_name or self.name_of(account)
            self.differ(f"{contract_name}: {who} {'lacks' if expected else 'holds'} {role}")

    def admin_roles(self, contract: Any, contract_name: str, roles: list[str]) -> None:
        """The record's admin holds every role in `roles`; a deployer that is not the admin holds none of them."""
        admin, deployer = str(self.record.data.get("admin")), str(self.record.data.get("deployer"))
        for role in roles:
            self.role(contract, contract_name, role, admin, "the admin")
            if deployer.lower() != admin.lower():
                self.role(contract, contract_name, role, deployer, "the deployer", expected=False)

    # -- code ----------------------------------------------------------------------------------------------
    def check_code(self) -> None:
        """Every named contract: runtime code and creation input against the build (see the module docstring)."""
        web3 = self.provider.web3
        self.start_area("code")
        for name, entry in (self.record.data.get("contracts") or {}).items():
            self.checks += 1
            contract_type = getattr(self.project, entry["contract_type"]).contract_type
            deployed = bytes(web3.eth.get_code(entry["address"]))
            if not deployed:
                self.differ(f"{name}: no code at {entry['address']}")
                continue
            built = bytes(contract_type.get_runtime_bytecode() or b"")
            problem = code_difference(built, deployed)
            if problem:
                self.differ(f"{name} ({entry['contract_type']} at {entry['address']}): {problem}")
            self.checks += 1
            tx = web3.eth.get_transaction(entry["tx_hash"])
            creation = bytes(contract_type.get_deployment_bytecode() or b"")
            sent = bytes(tx["input"])
            container = getattr(self.project, entry["contract_type"])
            arguments = bytes(container.constructor.encode_input(*entry.get("args", [])))
            if tx.get("to") is not None or not sent.startswith(creation):
                self.differ(f"{name}: its creation transaction {entry['tx_hash']} did not send the build's "
                            f"creation code (rebuilt since? the record's commit is {self.record.data.get('git_commit')})")
            elif sent[len(creation):] != arguments:
                self.differ(f"{name}: its creation transaction's constructor arguments are not the recorded "
                            f"{entry.get('args')}")
