"""Which private key each service of a stack signs with (`ServiceKeys`).

Roles (a service whose key is missing is not started, and the launcher says so):

| role               | used by                                                        | must be funded with            |
| ------------------ | -------------------------------------------------------------- | ------------------------------ |
| `admin`            | DA `forceMakeEpoch` (first epoch at once), alignment supervision `registerNode` of the stack's nodes; its address is the storage nodes' operator there | gas |
| `user`             | stack.json `private_key`: the default key of client commands   | storage/DA fees, deposits, gas |
| `compute_provider` | the compute provider broker (registers its service, settles)   | the registry's minimum stake + gas |
| `inft_oracle`      | the INFT re-encryption oracle (its address must be the deployment's oracle signer) | storage fees of re-encrypted files + gas |
| `da_nodes`         | one key per DA node: its signer address                        | votes × tokensPerVote stake + gas |
| `da_disperser`     | the DA disperser (pays the blob fees of what rollups disperse) | blob fees + gas                |

A local stack (`deaios up`) uses Anvil's public dev keys (`DEV_KEY_ROLES` in deaios.stack.config). A stack against
an existing chain (`deaios up --chain RPC --deployment FILE`) uses the operator's keys: `--keys FILE`, a JSON
object `{"admin": "0x…", "user": "0x…", "compute_provider": "0x…", "inft_oracle": "0x…", "da_nodes": ["0x…", …],
"da_disperser": "0x…"}`
(any subset; keep it mode 600), then environment variables `DEAIOS_KEY_<ROLE>` (upper case, e.g.
`DEAIOS_KEY_COMPUTE_PROVIDER`; `DEAIOS_KEY_DA_NODES` comma-separated) replace the file's entries, and `--key`
sets `user`. Storage nodes, the indexer and the KV node sign nothing. An area that adds a signing service adds
its role here (a new key of the file) and reads it with `ctx.keys.one(role)` / `ctx.keys.many(role)`.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deaios.errors import UserError

ROLES = ("admin", "user", "compute_provider", "inft_oracle", "da_nodes", "da_disperser")
#: Roles that take a list of keys.
LIST_ROLES = ("da_nodes",)
ENV_PREFIX = "DEAIOS_KEY_"


def normalize(key: str, where: str) -> str:
    """A 0x-prefixed 32-byte hex private key, or a UserError naming `where` it came from."""
    try:
        raw = bytes.fromhex(str(key).strip().removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UserError(f"{where} must be a 32-byte hex private key")
    return "0x" + raw.hex()


def address_of(key: str) -> str:
    from eth_account import Account

    return Account.from_key(key).address


@dataclass
class ServiceKeys:
    keys: dict[str, str | list[str]] = field(default_factory=dict)
    source: str = ""  # for messages: "Anvil dev keys", "keys file …"

    def one(self, role: str) -> str | None:
        value = self.keys.get(role)
        return value if isinstance(value, str) else None

    def many(self, role: str) -> list[str]:
        value = self.keys.get(role)
        return list(value) if isinstance(value, list) else ([value] if isinstance(value, str) else [])

    def address(self, role: str) -> str | None:
        key = self.one(role)
        return address_of(key) if key else None

    @classmethod
    def dev(cls) -> ServiceKeys:
        """The local stack's: Anvil dev keys by `DEV_KEY_ROLES`."""
        from deaios.stack.config import DEV_KEY_ROLES, dev_key

        def key(name: str) -> str:
            index = DEV_KEY_ROLES[name]
            assert isinstance(index, int)
            return dev_key(index)

        da: range = DEV_KEY_ROLES["DA nodes"]  # type: ignore[assignment]
        return cls({"admin": key("deployer/user"), "user": key("deployer/user"),
                    "compute_provider": key("compute provider"), "inft_oracle": key("INFT oracle"),
                    "da_nodes": [dev_key(i) for i in da], "da_disperser": key("DA disperser")}, "Anvil dev keys")

    @classmethod
    def load(cls, path: Path | None, environ: Mapping[str, str] | None = None, user: str | None = None) -> \
            ServiceKeys:
        """The operator's keys: `path` (JSON), then $DEAIOS_KEY_<ROLE>, then `user` (--key)."""
        environ = os.environ if environ is None else environ
        keys: dict[str, str | list[str]] = {}
        sources = []
        if path is not None:
            try:
                data = json.loads(Path(path).read_text())
            except (OSError, ValueError) as exc:
                raise UserError(f"--keys {path}: {exc}") from None
            if not isinstance(data, dict):
                raise UserError(f"--keys {path}: expected a JSON object of role: key")
            if Path(path).stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise UserError(f"--keys {path} holds private keys but others may read it: chmod 600 {path}")
            for role, value in data.items():
                keys[role] = _parse(role, value, f"--keys {path}: {role}")
            sources.append(f"keys file {path}")
        for name, value in environ.items():
            if name.startswith(ENV_PREFIX) and value.strip():
                role = name[len(ENV_PREFIX):].lower()
                keys[role] = _parse(role, value.split(",") if role in LIST_ROLES else value, f"${name}")
                sources.append(f"${name}")
        if user:
            keys["user"] = normalize(user, "--key")
            sources.append("--key")
        return cls(keys, ", ".join(sources) or "no keys")


def _parse(role: str, value: object, where: str) -> str | list[str]:
    if role in LIST_ROLES:
        if not isinstance(value, list):
            raise UserError(f"{where}: expected a list of keys")
        return [normalize(str(v), f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        raise UserError(f"{where}: expected one key")
    return normalize(value, where)
