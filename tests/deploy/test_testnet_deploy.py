"""The README's "Deploying to a testnet", run as an operator runs it, against a stand-in testnet: a separate Anvil
with 0G Galileo's chain id (16602) and a fresh mnemonic, reached through the `ethereum:zgtestnet:node` network of
ape-config.yaml ($ZG_RPC_URL). Nothing here uses Anvil's dev accounts: the deployer is a fresh key imported with
`ape accounts import` (into a scratch ape data folder) and unlocked by ape's passphrase variable, and every service
key is fresh and funded from the remote chain's own mnemonic accounts.

1. the deploy of every area is killed (SIGKILL, with a transaction in flight) and resumed: nothing is sent twice
   (the deployer's nonce equals the recorded transactions), the contracts of the first run are kept; a dry run of
   the rest in between sends nothing;
2. one area is redeployed (`--redeploy market`), the run interrupted in the crash window (its first transaction
   signed and recorded, not sent): the next run sends those bytes, once; `ape run verify_deployment` passes,
   emits explorer inputs (one is compiled back to the deployed bytecode), and fails with exit code 1 naming the
   difference once a wiring is changed by hand;
3. `deaios up --chain … --deployment … --keys …` runs the off-chain services against those contracts, and a
   storage upload/download, a KV write/read and a DA put/get go through it; the DA signers and the alignment
   supervision registrations are on that chain; a second stack joins the first one's storage network
   (`--join NODE_URL`, no keys) and its own KV node serves the same value.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from deaios.procs import project_root
from deaios.stack.process import deaios, running_stack

from remote_chain import ETHER, RemoteChain, new_key, remote_chain

ROOT = project_root()
ALIAS = "deployer"
PASSPHRASE = "not-a-dev-key-passphrase"
NETWORK = "ethereum:zgtestnet:node"


def address(key: str) -> str:
    return Account.from_key(key).address


@dataclass
class Operator:
    tmp: Path
    chain: RemoteChain
    keys: dict
    out: Path  # --out-dir of the deploy

    @property
    def record_path(self) -> Path:
        return self.out / "zgtestnet.json"

    def record(self) -> dict:
        return json.loads(self.record_path.read_text())

    def env(self) -> dict[str, str]:
        return {**os.environ, "APE_DATA_FOLDER": str(self.tmp / "ape-data"), "ZG_RPC_URL": self.chain.rpc,
                "ZG_CHAIN_ID": "16602", f"APE_ACCOUNTS_{ALIAS}_PASSPHRASE": PASSPHRASE,
                "PATH": os.pathsep.join([str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent),
                                         os.environ.get("PATH", "")])}

    def deploy_command(self, *extra: str) -> list[str]:
        return ["ape", "run", "deploy", "--all-areas", "--network", NETWORK, "--account", ALIAS,
                "--oracle-signer", address(self.keys["inft_oracle"]), "--out-dir", str(self.out), *extra]

    def ape(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ape", *args], capture_output=True, text=True, timeout=timeout, env=self.env(),
                              cwd=ROOT, stdin=subprocess.DEVNULL)

    def nonce(self) -> int:
        return self.chain.web3.eth.get_transaction_count(address(self.keys["deployer"]))


@pytest.fixture(scope="module")
def testnet(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("testnet")
    with remote_chain(tmp) as chain:
        keys = {"deployer": new_key(), "user": new_key(), "compute_provider": new_key(), "inft_oracle": new_key(),
                "da_nodes": [new_key(), new_key()]}
        chain.fund([address(k) for k in (keys["deployer"], keys["user"], keys["compute_provider"],
                                         keys["inft_oracle"], *keys["da_nodes"])], 100 * ETHER)
        yield Operator(tmp, chain, keys, tmp / "deployments")


@pytest.fixture(scope="module")
def deployed(testnet: Operator) -> Operator:
    """Import the deployer, deploy every area, kill the deploy mid-way, dry-run the rest, resume."""
    # `ape accounts import deployer` reads the key and the passphrase from stdin when there is no terminal
    imported = subprocess.run(["ape", "accounts", "import", ALIAS], input=f"{testnet.keys['deployer']}\n"
                              f"{PASSPHRASE}\n{PASSPHRASE}\n", capture_output=True, text=True, timeout=120,
                              env=testnet.env(), cwd=ROOT, start_new_session=True)
    assert imported.returncode == 0, imported.stdout + imported.stderr

    log = testnet.tmp / "deploy-killed.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(testnet.deploy_command(), stdout=out, stderr=subprocess.STDOUT, env=testnet.env(),
                                cwd=ROOT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while True:  # kill it with a transaction in flight, a third of the way through
        assert proc.poll() is None, f"the deploy ended before it could be killed:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        try:
            record = testnet.record()
        except (OSError, ValueError):
            record = {}
        if len(record.get("steps", {})) >= 10 and record.get("pending"):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.02)
    killed = testnet.record()
    assert killed["status"] == "in progress"
    nonce_before = testnet.nonce()

    dry = testnet.ape(*testnet.deploy_command("--dry-run")[1:])
    assert dry.returncode == 0, dry.stdout + dry.stderr[-4000:]
    assert "nothing was sent" in dry.stdout and " gas; at " in dry.stdout, dry.stdout
    assert "deploy market:AgentMarket#0" in dry.stdout  # the rest of the plan …
    assert "deploy storage:Flow#0" not in dry.stdout  # … and only the rest
    assert testnet.nonce() == nonce_before, "the dry run sent a transaction"
    assert testnet.record() == killed, "the dry run changed the record"

    resumed = testnet.ape(*testnet.deploy_command()[1:])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-4000:]
    return testnet


def test_a_killed_deploy_resumes_without_sending_anything_twice(deployed: Operator) -> None:
    record = deployed.record()
    assert record["status"] == "complete" and record["chain_id"] == 16602 and record["git_commit"]
    steps = record["steps"]
    # every transaction the deployer ever sent is one recorded step: none was sent twice
    assert deployed.nonce() == len(steps)
    deploys = [e for e in steps.values() if e["kind"] == "deploy"]
    assert len({e["address"] for e in deploys}) == len(deploys)
    web3 = deployed.chain.web3
    assert all(web3.eth.get_code(e["address"]) for e in deploys)
    assert {"flow", "da_entrance", "compute_ledger", "inft_nft", "alignment_supervision", "agent_market"} \
        <= set(record["contracts"])
    for name, entry in record["contracts"].items():
        assert record[name] == entry["address"] and entry["block_number"] > 0 and entry["tx_hash"]
    assert record["block_number"] == record["contracts"]["flow"]["block_number"]
    assert record["deployer"] == address(deployed.keys["deployer"])


def test_an_interrupted_redeploy_sends_its_signed_transaction_once(deployed: Operator) -> None:
    """`--redeploy market` interrupted in the crash window — its first transaction signed and recorded as pending,
    never sent — is continued by the same command: those very bytes are sent, once, and adopted, instead of a
    second deployment being signed."""
    from eth_abi import encode

    from deaios.deployment_record import DeploymentRecord

    before, nonce = deployed.record(), deployed.nonce()
    old = before["steps"]["market:AgentMarket#0"]
    built = json.loads((ROOT / ".build" / "__local__.json").read_text())["contractTypes"]["AgentMarket"]
    types = [i["type"] for i in next(e for e in built["abi"] if e["type"] == "constructor")["inputs"]]
    web3 = deployed.chain.web3
    signed = Account.from_key(deployed.keys["deployer"]).sign_transaction({
        "data": bytes.fromhex(built["deploymentBytecode"]["bytecode"][2:]) + encode(types, old["args"]),
        "value": 0, "gas": 5_000_000, "gasPrice": web3.eth.gas_price * 2, "nonce": nonce, "chainId": 16602})
    tx_hash = "0x" + signed.hash.hex().removeprefix("0x")
    interrupted = DeploymentRecord.load(deployed.record_path)
    interrupted.redeploy(["market"])  # what the interrupted run did before it signed
    interrupted.set_pending("market:AgentMarket#0", {k: old[k] for k in ("kind", "contract_type", "source_id", "args",
                                                                           "value")},
                            tx_hash, nonce, "0x" + signed.raw_transaction.hex().removeprefix("0x"))

    redeployed = deployed.ape(*deployed.deploy_command("--redeploy", "market")[1:])
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr[-4000:]
    assert "re-broadcasting the signed transaction" in redeployed.stderr
    record = deployed.record()
    step = record["steps"]["market:AgentMarket#0"]
    assert step["tx_hash"] == tx_hash and record["agent_market"] == step["address"] != before["agent_market"]
    assert record["inft_nft"] == before["inft_nft"]
    assert [r["area"] for r in record["replaced"]] == ["market"] and record["status"] == "complete"

    def sent(r: dict) -> set[str]:
        return {e["tx_hash"] for e in r["steps"].values()}

    # AgentMarket, bundles and the two roles they need (DELEGATION_LOCKER_ROLE on AgentNFT, FUNDER_ROLE on the
    # ledger): each sent once
    assert deployed.nonce() - nonce == len(sent(record) - sent(before)) == 4


def test_verify_deployment_finds_a_changed_wiring(deployed: Operator) -> None:
    explorer = deployed.tmp / "explorer"
    ok = deployed.ape("run", "verify_deployment", "--network", NETWORK, "--deployment", str(deployed.record_path),
                      "--standard-json-dir", str(explorer))
    assert ok.returncode == 0, ok.stdout + ok.stderr[-4000:]
    assert any(line.startswith("ok: ") for line in ok.stdout.splitlines()), ok.stdout

    record = deployed.record()
    index = {entry["name"]: entry for entry in json.loads((explorer / "index.json").read_text())}
    assert set(index) == set(record["contracts"])
    # an explorer compiles the input with a plain solc (no import callback): it must reproduce the build
    smallest = min(index.values(), key=lambda e: (explorer / e["input"]).stat().st_size)
    compiled = subprocess.run(
        ["node", "-e", "const s=require('solc');let i='';process.stdin.on('data',d=>i+=d)"
                       ".on('end',()=>process.stdout.write(s.compile(i)))"],
        input=(explorer / smallest["input"]).read_text(), capture_output=True, text=True, timeout=300, cwd=ROOT)
    output = json.loads(compiled.stdout)
    assert not [e for e in output.get("errors", []) if e["severity"] == "error"], output["errors"]
    source, name = smallest["contract"].rsplit(":", 1)
    built = json.loads((ROOT / ".build" / "__local__.json").read_text())["contractTypes"][name]
    assert "0x" + output["contracts"][source][name]["evm"]["deployedBytecode"]["object"] \
        == built["runtimeBytecode"]["bytecode"]

    # by hand, the admin takes the matcher's role on the ledger away: verification must name it
    ledger, matcher = record["compute_ledger"], record["compute_matcher"]
    role = keccak(text="MATCHER_ROLE")

    def role_call(selector: str) -> bytes:
        return keccak(text=selector)[:4] + role + bytes(12) + bytes.fromhex(matcher[2:])

    deployed.chain.send(deployed.keys["deployer"], ledger, data=role_call("revokeRole(bytes32,address)"),
                        gas=200_000)
    try:
        bad = deployed.ape("run", "verify_deployment", "--network", NETWORK, "--deployment",
                           str(deployed.record_path), "--no-standard-json")
        assert bad.returncode == 1, bad.stdout + bad.stderr[-4000:]
        assert "compute: compute_ledger: compute_matcher lacks MATCHER_ROLE" in bad.stdout.splitlines(), bad.stdout
    finally:
        deployed.chain.send(deployed.keys["deployer"], ledger, data=role_call("grantRole(bytes32,address)"),
                            gas=200_000)


def test_services_run_against_the_deployment(deployed: Operator) -> None:
    keys_file = deployed.tmp / "keys.json"
    keys = {role: deployed.keys[role] for role in ("user", "compute_provider", "inft_oracle", "da_nodes")}
    keys_file.write_text(json.dumps({**keys, "admin": deployed.keys["deployer"]}))
    keys_file.chmod(0o600)
    home = deployed.tmp / "home"
    data = deployed.tmp / "node-data"
    args = ("--chain", deployed.chain.rpc, "--deployment", str(deployed.record_path), "--keys", str(keys_file))
    with running_stack(data, nodes=3, home=home, args=args) as running:
        stack = running.stack
        assert stack.extra["chain_mode"] == "existing" and stack.anvil_pid is None
        assert stack.rpc == deployed.chain.rpc and stack.contracts["flow"] == deployed.record()["flow"]
        assert stack.private_key == keys["user"]
        assert stack.extra["compute_provider"]["address"] == address(keys["compute_provider"])
        assert stack.extra["inft_oracle"]
        da_nodes = stack.extra["da_nodes"]
        assert sorted(n["address"] for n in da_nodes) == sorted(address(k) for k in keys["da_nodes"])

        def run(*command: str, timeout: float = 120) -> str:
            result = deaios(*command, "--stack", str(data), home=home, timeout=timeout)
            assert result.returncode == 0, result.stdout + result.stderr[-4000:]
            return result.stdout

        blob = os.urandom(300_000)
        (deployed.tmp / "model.bin").write_bytes(blob)
        root = json.loads(run("storage", "upload", str(deployed.tmp / "model.bin")).splitlines()[-1])["root"]
        run("storage", "download", root, "-o", str(deployed.tmp / "model.copy"))
        assert (deployed.tmp / "model.copy").read_bytes() == blob

        stream = "0x" + "5a" * 32
        assert json.loads(run("kv", "put", stream, "model", f"log://{root}").splitlines()[-1])["result"] == "Commit"
        assert run("kv", "get", stream, "model").strip() == f"log://{root}"

        (deployed.tmp / "blob.bin").write_bytes(os.urandom(20_000))
        ref = run("da", "put", str(deployed.tmp / "blob.bin"), timeout=300).strip().splitlines()[-1]
        run("da", "get", ref, "-o", str(deployed.tmp / "blob.copy"), timeout=300)
        assert (deployed.tmp / "blob.copy").read_bytes() == (deployed.tmp / "blob.bin").read_bytes()

        # a second machine joins: its own KV node and indexer over the first one's storage network, no keys at all
        joined_dir = deployed.tmp / "joined-data"
        with running_stack(joined_dir, nodes=1, args=args[:4] + ("--join", stack.node_urls[0])) as joined:
            assert joined.stack.node_urls == stack.node_urls and not joined.stack.private_key
            assert "compute_provider" not in joined.stack.extra and not joined.stack.extra.get("da_nodes")
            got = deaios("kv", "get", stream, "model", "--stack", str(joined_dir), home=joined.home)
            assert got.returncode == 0 and got.stdout.strip() == f"log://{root}", got.stdout + got.stderr

        from deaios.alignment.chain import SupervisionChain

        supervised = {node.url for node in SupervisionChain(stack.rpc, stack.contracts["alignment_supervision"],
                                                            None).nodes()}
        assert set(stack.node_urls) | {n["url"] for n in da_nodes} <= supervised
