"""DiLoCoX end to end on a real local stack (`deaios up`, one per module, no DA nodes): worker processes that
meet only through the storage log and KV — bit-identical parameters every round, a SIGKILLed worker left out
after the round's deadline, a resume from a checkpoint that follows the uninterrupted trajectory, a hash
mismatch that stops the job, and the model record pointing at a checkpoint that loads.

The uninterrupted trajectory is computed in this process while the stack starts (`simulate.run_diloco`:
the workers' own InnerTrainer, Compressor, GlobalState and average, with the same XLA settings, see
conftest.py), which also compiles every program the workers run into the JAX cache they share."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest

from deaios.kv.client import Client
from deaios.stack.config import DEV_KEY_ROLES, Stack, dev_address, dev_key
from deaios.stack.launcher import project_root
from deaios.stack.process import RunningStack, deaios, running_stack, stack_env
from deaios.storage.client import StorageClient
from deaios.training.config import JobConfig
from deaios.training.corpus import Corpus, build
from deaios.training.inner import InnerTrainer
from deaios.training.ledger import Ledger, report_key
from deaios.training.model import generate
from deaios.training.simulate import RunResult, run_diloco
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


RESUMED = {"workers": 2, "rounds": 4, "delay": True, "deadline": 60.0}  # the resumed job (keys 5, 6)
SLOW_LINK = "0.001"  # Mbit/s: the victim's first report waits tens of seconds behind its simulated link


def job_toml(job_id: str, workers: int = 2, rounds: int = 4, delay: bool = True, deadline: float = 60.0,
             keys: list[int] | None = None) -> str:
    """`keys`: the dev keys of the workers (default the training dev keys 0…): jobs running at the same
    time need different accounts (each account's transactions are serialised by its nonce)."""
    accounts = json.dumps([dev_address(k) for k in keys or WORKER_KEYS[:workers]])
    return TINY.format(id=job_id, workers=workers, rounds=rounds, delay=str(delay).lower(), deadline=deadline,
                       accounts=accounts)


def uninterrupted() -> RunResult:
    """The resumed job's trajectory without interruption, in process; on the way it compiles (into the
    session's JAX cache) the inner step, the evaluation, the outer step and what `train sample` runs."""
    job = JobConfig.from_toml(job_toml("resumed", keys=list(WORKER_KEYS[5:7]), **RESUMED))
    data, _ = build(job.corpus)  # what `deaios train start` uploads: the standard library's sources
    result = run_diloco(job, Corpus.load(data), "uninterrupted")
    generate(GlobalState.initial(job).params, job.model, b"def ", 24)
    return result


@pytest.fixture(scope="module")
def reference() -> Iterator[Future[RunResult]]:
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(uninterrupted)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, reference: Future[RunResult]) -> Iterator[RunningStack]:
    """The stack (no DA nodes: training does not use them); the reference run compiles while it starts, so
    that the workers load their programs from the cache and start their rounds together."""
    base = tmp_path_factory.mktemp("trainstack")
    with running_stack(base / "data", nodes=3, home=base / "home", args=("--da-nodes", "0")) as running:
        reference.result(timeout=300)
        yield running


def cli(run: RunningStack, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return deaios(*args, "--stack", str(run.dir), home=run.home, timeout=timeout)


def start_job(run: RunningStack, tmp: Path, job_id: str, **options) -> dict:
    path = tmp / f"{job_id}.toml"
    path.write_text(job_toml(job_id, **options))
    result = cli(run, "train", "start", str(path), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def worker(run: RunningStack, job_id: str, index: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "deaios.cli", "train", "worker", "--job", job_id, "--index",
                             str(index), "--single-thread", "--json", "--stack", str(run.dir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=stack_env(run.home),
                            cwd=project_root())


Finished = tuple[int, list[dict], str]  # exit code, JSON lines, stderr


def finish(proc: subprocess.Popen[str], timeout: float = 600) -> Finished:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"worker {proc.args} did not finish within {timeout:.0f} s; its stderr:\n{err[-6000:]}",
                    pytrace=False)
    return proc.returncode, [json.loads(line) for line in out.splitlines() if line.startswith("{")], err


def expect_exit(finished: Finished, code: int = 0) -> list[dict]:
    """The worker's JSON lines if it exited with `code`; else the test fails with the worker's stderr in full
    (an assertion message would be cut to a few lines)."""
    got, lines, err = finished
    if got != code:
        pytest.fail(f"a worker exited with {got}, expected {code}; its last lines: {lines[-2:]}; its stderr:\n"
                    f"{err[-6000:]}", pytrace=False)
    return lines


@pytest.fixture(scope="module")
def jobs(run: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Three jobs run at the same time (each with its own accounts), their workers as real processes:
    "kill" (3 workers; worker 2, on a very slow simulated link, SIGKILLed while it sends its first
    pseudo-gradient), "resumed" (both workers stopped at the checkpoint of round 2, then restarted),
    "forged" (worker 1's report of round 0 written by hand with another parameter hash). Worker 0 of
    "forged" and of "resumed" (same seed, shard and steps) upload bit-identical round-0 pseudo-gradients
    from different accounts at about the same time: whoever finds the file submitted by the other submits
    it too before placing its shares (storage nodes take shares only from a submitter of the file).

    Worker 2 dies before its KV report: a worker killed between a KV transaction's Flow submission and its
    upload would stall the KV node's replay for its data deadline (120 s), which every worker survives
    (`kv.Client.wait_result` counts time without progress) but which this test need not spend."""
    tmp = tmp_path_factory.mktemp("jobs")
    start_job(run, tmp, "kill", workers=3, deadline=6.0, keys=list(WORKER_KEYS[0:3]))
    start_job(run, tmp, "resumed", keys=list(WORKER_KEYS[5:7]), **RESUMED)
    start_job(run, tmp, "forged", delay=False, keys=list(WORKER_KEYS[7:9]))
    forged = {"stages": ["0x" + "00" * 32] * 2, "hash": "0x" + "ab" * 32, "loss": 5.0, "position": 3, "bytes": 0}

    async def forge(ledger, session):
        kv = Client.from_stack(run.stack, session)
        kv.private_key = dev_key(WORKER_KEYS[8])
        return await kv.put(ledger.stream, report_key(0, 1), json.dumps(forged))

    assert ledger_call(run.stack, "forged", forge).ok

    def key(i: int) -> tuple[str, str]:
        return "--key", dev_key(WORKER_KEYS[i])

    kill = [worker(run, "kill", i, *key(i), *(("--link-mbps", SLOW_LINK) if i == 2 else ())) for i in range(3)]
    first_half = [worker(run, "resumed", i, *key(5 + i), "--stop-after", "2") for i in range(2)]
    forger_victim = worker(run, "forged", 0, *key(7))
    victim = kill[2]
    assert victim.stdout is not None
    first_line = json.loads(victim.stdout.readline())  # round 0 trained, its exchange started
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    halves = [finish(p) for p in first_half]
    second_half = [worker(run, "resumed", i, *key(5 + i)) for i in range(2)]
    return {"kill": [finish(p) for p in kill[:2]], "killed_first_line": first_line, "first_half": halves,
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
    assert jobs["killed_first_line"]["round"] == 0
    done = [expect_exit(finished)[-1] for finished in jobs["kill"]]
    assert done[0]["done"] and done[0]["hash"] == done[1]["hash"] and done[0]["round"] == 4
    status = json.loads(cli(run, "train", "status", "kill", "--json").stdout)
    rows = {row["round"]: row for row in status["perRound"]}
    # every round ends with one parameter hash across the workers that reported it
    assert all(row["hashes"] == 1 for row in rows.values()) and sorted(rows) == [0, 1, 2, 3]
    # worker 2 died before its first report: round 0 closed at its deadline without it, and the survivors
    # went on to the end (a survivor may miss a round's deadline on a loaded machine)
    assert all(2 not in row["reported"] and row["members"] for row in rows.values())
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


def test_resuming_from_a_checkpoint_follows_the_uninterrupted_trajectory(
        run: RunningStack, jobs: dict, reference: Future[RunResult]) -> None:
    for finished in jobs["first_half"]:
        assert expect_exit(finished)[-1]["round"] == 2  # stopped at the checkpoint of round 2
    ends = [expect_exit(finished)[-1] for finished in jobs["second_half"]]
    assert all("from round 2" in err for _, _, err in jobs["second_half"])  # loaded the checkpoint of round 2
    status = json.loads(cli(run, "train", "status", "resumed", "--json").stdout)
    assert [row["members"] for row in status["perRound"]] == [[0, 1]] * 4  # everyone in every round
    # every round's reports carry the hash of the uninterrupted run's x_r, and the end is its end, bit for bit
    uninterrupted = reference.result()
    assert hashes(run.stack, "resumed") == {r: {h} for r, h in enumerate(uninterrupted.hashes)}
    assert [end["hash"] for end in ends] == [uninterrupted.final_hash] * 2 == [status["model"]["hash"]] * 2


def test_a_parameter_hash_mismatch_stops_the_job(run: RunningStack, jobs: dict) -> None:
    expect_exit(jobs["forged"], 1)
    err = jobs["forged"][2]
    assert "parameter hash mismatch at round 0" in err and "0x" + "ab" * 32 in err, err
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
