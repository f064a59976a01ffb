"""DiLoCoX end to end on a real local stack (`deaios up`, one per module): worker processes that meet only
through the storage log and KV — bit-identical parameters every round, a SIGKILLed worker left out after
the round's deadline, a resume from a checkpoint that follows the uninterrupted trajectory, a hash
mismatch that stops the job, and the model record pointing at a checkpoint that loads."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from deaios.kv.client import Client
from deaios.stack.config import DEV_KEY_ROLES, Stack, dev_address, dev_key
from deaios.stack.launcher import project_root
from deaios.stack.process import RunningStack, deaios, running_stack, stack_env
from deaios.storage.client import StorageClient
from deaios.training.config import JobConfig
from deaios.training.corpus import Corpus
from deaios.training.inner import InnerTrainer
from deaios.training.ledger import Ledger, report_key
from deaios.training.state import GlobalState

TINY = """
[job]
id = "{id}"
name = "e2e-tiny"
[model]
d_model = 16
layers = 1
heads = 2
seq_len = 16
[train]
workers = {workers}
rounds = {rounds}
inner_steps = 3
batch_size = 4
warmup_steps = 2
accounts = {accounts}
[outer]
stages = 2
delay = {delay}
[elastic]
round_deadline = {deadline}
checkpoint_every = 2
close_grace = 1.0
[corpus]
max_bytes = 40000
eval_bytes = 2048
"""
WORKER_KEYS: range = DEV_KEY_ROLES["training workers"]  # type: ignore[assignment]


WARM_UP = """
import numpy as np
from deaios.training import runtime
runtime.single_thread(); runtime.configure()
from deaios.training.config import JobConfig
from deaios.training.inner import InnerTrainer
from deaios.training.state import GlobalState
job = JobConfig.from_toml({toml!r})
state = GlobalState.initial(job)
InnerTrainer(job).warm_up(state.params, np.zeros((2048 // 17, 17), np.int32))
state.warm_up()
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The stack, and JAX's compilation cache of its home warmed (while the stack starts) with the programs
    the tiny job's workers run, so that workers start their rounds together."""
    base = tmp_path_factory.mktemp("trainstack")
    toml = TINY.format(id="warm", workers=2, rounds=1, delay="true", deadline=1.0, accounts="[]")
    warm = subprocess.Popen([sys.executable, "-c", WARM_UP.format(toml=toml)], env=stack_env(base / "home"),
                            cwd=project_root(), stderr=subprocess.PIPE, text=True)
    with running_stack(base / "data", nodes=3, home=base / "home") as running:
        assert warm.wait(timeout=300) == 0, warm.stderr.read() if warm.stderr else ""
        yield running


def cli(run: RunningStack, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return deaios(*args, "--stack", str(run.dir), home=run.home, timeout=timeout)


def start_job(run: RunningStack, tmp: Path, job_id: str, workers: int = 2, rounds: int = 4, delay: bool = True,
              deadline: float = 60.0, keys: list[int] | None = None) -> dict:
    """`keys`: the dev keys of the workers (default the training dev keys 0…): jobs running at the same
    time need different accounts (each account's transactions are serialised by its nonce)."""
    path = tmp / f"{job_id}.toml"
    accounts = json.dumps([dev_address(k) for k in keys or WORKER_KEYS[:workers]])
    path.write_text(TINY.format(id=job_id, workers=workers, rounds=rounds, delay=str(delay).lower(), deadline=deadline,
                                accounts=accounts))
    result = cli(run, "train", "start", str(path), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def worker(run: RunningStack, job_id: str, index: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "deaios.cli", "train", "worker", "--job", job_id, "--index",
                             str(index), "--single-thread", "--json", "--stack", str(run.dir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=stack_env(run.home),
                            cwd=project_root())


def finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, list[dict], str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"worker {proc.args} did not finish within {timeout:.0f} s:\n{err[-3000:]}")
    if proc.returncode not in (0, 1):
        err = f"exit code {proc.returncode} of {proc.args}; stdout tail: {out[-1500:]!r}; stderr: {err[-3000:]}"
    return proc.returncode, [json.loads(line) for line in out.splitlines() if line.startswith("{")], err


@pytest.fixture(scope="module")
def jobs(run: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Four jobs run at the same time (each with its own accounts), their workers as real processes:
    "kill" (3 workers, worker 2 SIGKILLed after its first round), "straight" (2 workers, uninterrupted),
    "resumed" (the same job as "straight": both workers stopped at the checkpoint of round 2, then restarted),
    "forged" (worker 1's report of round 0 written by hand with another parameter hash)."""
    tmp = tmp_path_factory.mktemp("jobs")
    start_job(run, tmp, "kill", workers=3, deadline=6.0, keys=list(WORKER_KEYS[0:3]))
    start_job(run, tmp, "straight", keys=list(WORKER_KEYS[3:5]))
    start_job(run, tmp, "resumed", keys=list(WORKER_KEYS[5:7]))
    start_job(run, tmp, "forged", delay=False, keys=list(WORKER_KEYS[7:9]))
    forged = {"stages": ["0x" + "00" * 32] * 2, "hash": "0x" + "ab" * 32, "loss": 5.0, "position": 3, "bytes": 0}

    async def forge(ledger, session):
        kv = Client.from_stack(run.stack, session)
        kv.private_key = dev_key(WORKER_KEYS[8])
        return await kv.put(ledger.stream, report_key(0, 1), json.dumps(forged))

    assert ledger_call(run.stack, "forged", forge).ok

    def key(i: int) -> tuple[str, str]:
        return "--key", dev_key(WORKER_KEYS[i])

    kill = [worker(run, "kill", i, *key(i)) for i in range(3)]
    straight = [worker(run, "straight", i, *key(3 + i)) for i in range(2)]
    first_half = [worker(run, "resumed", i, *key(5 + i), "--stop-after", "2") for i in range(2)]
    forger_victim = worker(run, "forged", 0, *key(7))
    victim = kill[2]
    assert victim.stdout is not None
    first_line = json.loads(victim.stdout.readline())  # round 0 trained, its exchange started
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    halves = [finish(p) for p in first_half]
    second_half = [worker(run, "resumed", i, *key(5 + i)) for i in range(2)]
    return {"kill": [finish(p) for p in kill[:2]], "killed_first_line": first_line,
            "straight": [finish(p) for p in straight], "first_half": halves,
            "second_half": [finish(p) for p in second_half], "forged": finish(forger_victim)}


def ledger_call(stack: Stack, job_id: str, job):
    async def go():
        async with aiohttp.ClientSession() as session:
            return await job(Ledger(Client.from_stack(stack, session), job_id), session)
    return asyncio.run(go())


def hashes(stack: Stack, job_id: str) -> dict[int, set[str]]:
    async def job(ledger, session):
        return {r: {rep["hash"] for rep in entry["reports"].values()} for r, entry in (await ledger.rounds()).items()}
    return ledger_call(stack, job_id, job)


def test_workers_meet_through_the_network_and_a_killed_worker_does_not_stop_the_round(
        run: RunningStack, jobs: dict, tmp_path: Path) -> None:
    killed_at = jobs["killed_first_line"]["round"]  # 0, or 1 if round 0 closed before worker 2 was ready
    assert killed_at < 3
    for code, lines, err in jobs["kill"]:
        assert code == 0, err
    done = [lines[-1] for _, lines, _ in jobs["kill"]]
    assert done[0]["done"] and done[0]["hash"] == done[1]["hash"] and done[0]["round"] == 4
    status = json.loads(cli(run, "train", "status", "kill", "--json").stdout)
    rows = {row["round"]: row for row in status["perRound"]}
    # every round ends with one parameter hash across the workers that reported it
    assert all(row["hashes"] == 1 for row in rows.values()) and sorted(rows) == [0, 1, 2, 3]
    # worker 2 died after its report of its first round at most: a round closed at its deadline without
    # it, and the survivors went on to the end (a survivor may miss a round's deadline on a loaded machine)
    assert all(2 not in rows[r]["members"] for r in rows if r > killed_at) and all(rows[r]["members"] for r in rows)
    assert any(row["closed"] == "deadline" for row in rows.values())
    assert status["bytesExchanged"] > 0 and status["stopped"] is None
    # the model record points at a checkpoint that loads, with the recorded hash and held-out loss
    model = status["model"]
    assert model["round"] == 4 and model["final"] and model["path"].startswith("log://")

    async def load(ledger, session):
        storage = StorageClient(session, run.stack.node_urls)
        out = tmp_path / "ckpt.bin"
        await storage.download(model["path"].removeprefix("log://"), out)
        record = await ledger.job()
        corpus = tmp_path / "corpus.bin"
        await storage.download(record["corpusRoot"], corpus)
        return record, out.read_bytes(), corpus.read_bytes()

    record, data, corpus = ledger_call(run.stack, "kill", load)
    job = JobConfig.from_json(record["config"])
    state, meta = GlobalState.unpack(job, data)
    assert state.hash() == model["hash"] == done[0]["hash"] and meta["final"]
    loss = InnerTrainer(job).evaluate(state.params, Corpus.load(corpus).eval_windows(job.model.seq_len))
    assert loss == pytest.approx(model["eval_loss"], abs=1e-4)
    sample = cli(run, "train", "sample", "kill", "--length", "24", "--json")
    assert sample.returncode == 0, sample.stderr
    assert len(json.loads(sample.stdout)["sample"]) > 0


def test_resuming_from_a_checkpoint_follows_the_uninterrupted_trajectory(run: RunningStack, jobs: dict) -> None:
    for code, lines, err in jobs["first_half"]:
        assert code == 0, err
        assert lines[-1]["round"] == 2  # stopped at the checkpoint of round 2
    ends = jobs["straight"] + jobs["second_half"]
    assert all(code == 0 for code, _, _ in ends), [err for _, _, err in ends]
    assert all("from round 2" in err for _, _, err in jobs["second_half"])  # loaded the checkpoint of round 2
    a, b = hashes(run.stack, "straight"), hashes(run.stack, "resumed")
    assert sorted(a) == sorted(b) == [0, 1, 2, 3]
    assert all(len(a[r]) == 1 and a[r] == b[r] for r in a)
    assert len({lines[-1]["hash"] for _, lines, _ in ends}) == 1


def test_a_parameter_hash_mismatch_stops_the_job(run: RunningStack, jobs: dict) -> None:
    code, _, err = jobs["forged"]
    assert code == 1 and "parameter hash mismatch at round 0" in err and "0x" + "ab" * 32 in err, err
    status = json.loads(cli(run, "train", "status", "forged", "--json").stdout)
    assert "mismatch" in status["stopped"]["reason"]


def test_bad_input_exits_2_with_one_line(run: RunningStack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nd_model = 10\nheads = 4\n")
    for args in (["train", "start", str(bad)], ["train", "status", "no-such-job"],
                 ["train", "worker", "--job", "kill", "--index", "7"], ["train", "sample", "bad id!"]):
        result = cli(run, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
