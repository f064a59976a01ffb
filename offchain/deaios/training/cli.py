"""`deaios train …`: start a DiLoCoX job, run its workers, follow it, sample from its model.

Every command takes `--stack PATH`, `--key HEX` (default $DEAIOS_KEY, else: `start` the stack's key, a
worker the training dev key of its slot) and `--json` (JSON lines on stdout). Bad input (a malformed
JOB.toml, an unknown job, a corpus with too little text) exits 2 with one `error: …` line; a job that
stops (e.g. a parameter-hash mismatch between workers) exits 1 with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from deaios.cli_context import client_context
from deaios.cli_context import client_options as shared_client_options
from deaios.errors import UserError
from deaios.stack.config import DEV_KEY_ROLES, dev_address, dev_key

TRAINING_KEYS: range = DEV_KEY_ROLES["training workers"]  # type: ignore[assignment]


def client_options(f: Callable) -> Callable:
    """The client options (`deaios.cli_context`); the function receives `stack`, `key` (--key, else $DEAIOS_KEY, else
    None: the defaults differ per command) and `as_json`."""
    import functools

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = client_context()
        return f(*args, stack=client.stack(), key=client.explicit_key(), as_json=client.as_json, **kwargs)

    return shared_client_options(wrapper)


def emit(as_json: bool, value: dict[str, Any], text: str | None = None) -> None:
    click.echo(json.dumps(value) if as_json or text is None else text)


def _network(stack, key: str | None, link_mbps: float | None = None):
    from deaios.kv.client import KvError
    from deaios.training.network import Network

    try:
        return Network(stack, key, link_mbps)
    except KvError as exc:
        raise UserError(str(exc)) from None


def _check_job_id(job_id: str) -> str:
    from deaios.training.config import JOB_ID

    if not JOB_ID.match(job_id):
        raise UserError(f"job id {job_id!r}: letters, digits, '.', '_' and '-' only, at most 64")
    return job_id


@click.group()
def train() -> None:
    """DiLoCoX training over the deaios network: start, worker, status, sample."""


@train.command()
@click.argument("job_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--corpus", "corpus_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Train on the UTF-8 text files under DIR (default: the Python standard library's sources).")
@client_options
def start(job_file: Path, corpus_dir: Path | None, stack, key: str | None, as_json: bool) -> None:
    """Create the job of JOB_FILE (TOML): the corpus and the job file go to the log, the job record and the
    writers of its ledger to KV. Prints the job id the workers take (`deaios train worker --job ID`)."""
    from deaios.training.config import JobConfig
    from deaios.training.corpus import build
    from deaios.training.ledger import Ledger, registry_stream
    from deaios.training.params import count_params, init_params

    try:
        config = JobConfig.from_toml(job_file.read_text())
    except OSError as exc:
        raise UserError(f"cannot read {job_file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UserError(f"{job_file}: {exc}") from None
    if corpus_dir is not None and not corpus_dir.is_dir():
        raise UserError(f"--corpus {corpus_dir}: not a directory")
    accounts = list(config.train.accounts)
    if not accounts:
        if config.train.workers > len(TRAINING_KEYS):
            raise UserError(f"{config.train.workers} workers need [train] accounts (the stack has "
                            f"{len(TRAINING_KEYS)} training dev keys)")
        accounts = [dev_address(TRAINING_KEYS[i]) for i in range(config.train.workers)]
    try:
        corpus, summary = build(config.corpus, corpus_dir)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    net = _network(stack, key or stack.private_key)
    try:
        async def create() -> dict[str, Any]:
            corpus_root = await net.upload(corpus)
            job_root = await net.upload(config.canonical())
            job_id = config.id or job_root[2:14]
            ledger = Ledger(net.kv, job_id)
            if await ledger.job():
                raise UserError(f"job {job_id!r} already exists in this stack (choose another [job] id)")
            final = config.with_id(job_id)
            params = count_params(init_params(final.model, final.train.seed))
            record = {"config": final.to_json(), "jobRoot": job_root, "corpusRoot": corpus_root, "corpus": summary,
                      "owner": net.kv_address, "params": params}
            batch = net.kv.batch().set(ledger.stream, "job", json.dumps(record, sort_keys=True))
            for account in accounts:
                batch.grant_writer(ledger.stream, account)
            outcome = await net.commit(batch)
            if not outcome.ok:
                raise UserError(f"the job record was rejected: {outcome.result}")
            grants = net.kv.batch()
            for account in accounts:
                grants.grant_writer(registry_stream(), account)
            outcome = await net.commit(grants)
            if not outcome.ok:
                raise UserError(f"{net.kv_address} may not let the workers write the model registry "
                                f"({outcome.result}): start the job with the registry stream's admin key")
            return {"job": job_id, "jobRoot": job_root, "corpusRoot": corpus_root, "corpus": summary,
                    "params": params, "stream": "0x" + ledger.stream.hex(), "workers": accounts,
                    "rounds": final.train.rounds, "innerSteps": final.train.inner_steps}

        out = net.run(create())
    finally:
        net.close()
    emit(as_json, out, f"job {out['job']}: {out['params']:,} parameters, {out['corpus']['trainBytes']:,} training bytes "
                       f"({out['corpus']['source']}), {len(accounts)} workers × {out['rounds']} rounds × "
                       f"{out['innerSteps']} steps\nrun each worker with: deaios train worker --job {out['job']}")


@train.command()
@click.option("--job", "job_id", required=True, help="The job id `deaios train start` printed.")
@click.option("--index", type=click.IntRange(0), default=None,
              help="The worker slot (shard) to take; default the first unclaimed. A restarted worker passes its own.")
@click.option("--link-mbps", type=click.FloatRange(min=0.001), default=None,
              help="Simulate a link of this bandwidth: add bytes·8/bandwidth to each pseudo-gradient transfer.")
@click.option("--stop-after", type=click.IntRange(1), default=None,
              help="Exit cleanly once the checkpoint of this round is written (resume later from it).")
@click.option("--single-thread", is_flag=True, help="Run XLA on one thread (several workers on one machine).")
@client_options
def worker(job_id: str, index: int | None, link_mbps: float | None, stop_after: int | None, single_thread: bool,
           stack, key: str | None, as_json: bool) -> None:
    """Run one worker of job ID until the job's last round (resuming from the latest checkpoint)."""
    from deaios.training import runtime

    if single_thread:
        runtime.single_thread()
    runtime.configure()
    import logging

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from deaios.kv.client import KvError
    from deaios.storage.client import StorageClientError
    from deaios.training.worker import JobStopped, Worker

    _check_job_id(job_id)
    err = Console(stderr=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s train %(levelname)s %(name)s: %(message)s")
    chosen = key
    net = _network(stack, chosen or dev_key(TRAINING_KEYS[index or 0]), link_mbps)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(), console=err,
                        transient=True, disable=as_json or not err.is_terminal)
    tasks: dict[int, Any] = {}

    def on_step(r: int, step: int, total: int, loss: float) -> None:
        if r not in tasks:
            tasks[r] = progress.add_task(f"round {r}", total=total, loss=loss)
        progress.update(tasks[r], completed=step, loss=loss)

    def on_round(line) -> None:
        if line.round in tasks:
            progress.remove_task(tasks.pop(line.round))
        stats = line.compression
        ratio = "/".join(f"{s['ratio']}×" for s in stats) if stats else "-"
        emit(as_json, {"worker": w.index, **line.to_json()},
             f"round {line.round}: loss {line.loss:.4f}, averaged round {line.averaged} of workers {line.members} "
             f"({line.reason}), idle {line.idle:.2f} s, sent {line.bytes_sent:,} B (compression {ratio})")

    def key_for(slot: int) -> str:
        if slot >= len(TRAINING_KEYS):
            raise UserError(f"worker {slot} needs --key (the stack has {len(TRAINING_KEYS)} training dev keys)")
        return dev_key(TRAINING_KEYS[slot])

    w = Worker(net, job_id, index, on_round, on_step, stop_after, say=lambda m: err.print(m),
               key_for=None if chosen else key_for)
    try:
        with progress:
            w.start()
            state = w.run()
    except JobStopped as exc:
        raise click.ClickException(str(exc)) from None
    except (KvError, StorageClientError) as exc:
        raise click.ClickException(f"network: {exc}") from None
    finally:
        net.close()
    emit(as_json, {"worker": w.index, "done": True, "round": state.round, "hash": state.hash(),
                   "bytesSent": w.total_sent, "wireBytesSent": dict(net.wire),
                   "finalIdleSeconds": round(w.final_idle, 3)},
         f"worker {w.index} done at round {state.round}: parameters {state.hash()}, sent {w.total_sent:,} B "
         f"of pseudo-gradients ({net.wire['exchange']:,} B on the wire for the exchanges, "
         f"{net.wire['checkpoint']:,} B for checkpoints)")


def _read(stack, job_id: str, job: Callable) -> Any:
    from deaios.training.ledger import Ledger

    _check_job_id(job_id)
    net = _network(stack, None)
    try:
        return net.run(job(Ledger(net.kv, job_id), net))
    finally:
        net.close()


@train.command()
@click.argument("job_id")
@client_options
def status(job_id: str, stack, key: str | None, as_json: bool) -> None:
    """Show job ID: rounds (members, losses, bytes exchanged), checkpoints, the model record."""
    async def collect(ledger, net) -> dict[str, Any]:
        record = await ledger.job()
        if not record:
            raise UserError(f"no job {job_id!r} in this stack")
        return {"job": record, "rounds": await ledger.rounds(), "checkpoints": await ledger.checkpoints(),
                "model": await ledger.model_record(), "stopped": await ledger.stopped(),
                "claims": await ledger.items("worker/")}

    info = _read(stack, job_id, collect)
    config = info["job"]["config"]
    rounds = []
    for r, entry in sorted(info["rounds"].items()):
        reports = entry["reports"]
        close = entry["close"] or {}
        rounds.append({"round": r, "reported": sorted(reports), "members": close.get("members"),
                       "closed": close.get("reason"),
                       "loss": round(sum(x.get("loss", 0) for x in reports.values()) / max(1, len(reports)), 4),
                       "bytes": sum(x.get("bytes", 0) for x in reports.values()),
                       "hashes": len({x.get("hash") for x in reports.values()})})
    summary = {"job": job_id, "name": config["name"], "workers": config["train"]["workers"],
               "rounds": config["train"]["rounds"], "params": info["job"]["params"],
               "bytesExchanged": sum(r["bytes"] for r in rounds), "model": info["model"], "stopped": info["stopped"],
               "checkpoints": {str(k): v for k, v in sorted(info["checkpoints"].items())}, "perRound": rounds}
    if as_json:
        click.echo(json.dumps(summary))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]job {job_id}[/] ({config['name']}): {summary['params']:,} parameters, "
                  f"{summary['workers']} workers, {summary['rounds']} rounds × {config['train']['inner_steps']} steps, "
                  f"stages {config['outer']['stages']}, delay {config['outer']['delay']}, "
                  f"compression {config['compression']['mode']}")
    table = Table("round", "reported", "averaged", "closed", "mean loss", "bytes sent", "distinct hashes")
    for row in rounds:
        table.add_row(str(row["round"]), str(row["reported"]), str(row["members"]), str(row["closed"]),
                      f"{row['loss']:.4f}", f"{row['bytes']:,}", str(row["hashes"]))
    console.print(table)
    for r, ck in summary["checkpoints"].items():
        console.print(f"checkpoint round {r}: {ck['path']} (held-out loss {ck['eval_loss']})")
    console.print(f"model record AI_{job_id}: {json.dumps(info['model'])}")
    if info["stopped"]:
        console.print(f"[red]stopped[/]: {info['stopped']['reason']}")


@train.command()
@click.argument("job_id")
@click.option("--prompt", default="def ", show_default=True, help="Text the sample continues.")
@click.option("--length", type=click.IntRange(1, 4096), default=200, show_default=True, help="Bytes to generate.")
@click.option("--temperature", type=click.FloatRange(0), default=0.8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@client_options
def sample(job_id: str, prompt: str, length: int, temperature: float, seed: int, stack, key: str | None,
           as_json: bool) -> None:
    """Generate text from job ID's latest checkpoint (the model record AI_<ID>)."""
    from deaios.training import runtime
    from deaios.training.config import JobConfig
    from deaios.training.model import generate
    from deaios.training.state import GlobalState

    runtime.configure()
    async def load(ledger, net) -> tuple[dict, dict, bytes]:
        record, model = await ledger.job(), await ledger.model_record()
        if not record:
            raise UserError(f"no job {job_id!r} in this stack")
        if not model:
            raise UserError(f"job {job_id!r} has no checkpoint yet (AI_{job_id} is not in the registry)")
        return record, model, await net.download(model["path"].removeprefix("log://"))

    record, model, data = _read(stack, job_id, load)
    job = JobConfig.from_json(record["config"])
    state, _ = GlobalState.unpack(job, data)
    state.finish()
    text = generate(state.params, job.model, prompt.encode(), length, temperature, seed).decode("utf-8", "replace")
    emit(as_json, {"job": job_id, "round": model["round"], "eval_loss": model["eval_loss"], "path": model["path"],
                   "prompt": prompt, "sample": text}, prompt + text)
