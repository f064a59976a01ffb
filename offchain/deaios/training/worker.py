"""`deaios train worker`: one DiLoCoX worker process, meeting the others only through the deaios network.

Start: read the job record (KV), download the corpus (log), claim its slot (KV), load the latest checkpoint
(the `ckpt/` records; its own saved state if it has one), replay every round closed since from the
pseudo-gradients in the log (the same `receive`/`advance` as live rounds), then train.

A round r: H inner AdamW steps from x_r on its shard → Δ = x_r − x_local per stage, compressed with error
feedback (main thread, in round order) → the exchange (`exchange`, on the network thread): upload one
storage file per stage, write its report (roots, hash of x_r, loss, position) to `round/r/worker/i`, wait until the round
is closed (every expected member reported, or its deadline passed; `round/r/close` by compare-and-swap),
check every member's hash of x_r against its own (a mismatch stops the job), download the members' files
and average them per stage. Without the delay the worker waits for that before the outer step; with it,
it starts round r + 1 at once from x_{r+1} = Outer(x_r, avg_{r−1}) and collects round r's average at the
end of round r + 1 (the time it still has to wait then is its idle time); round r + 1's files and report
go out before that wait, so one late exchange does not delay the next.

Checkpoints: the state a round's close determines (x, outer states, the pending average, positions) is
uploaded by the worker that closed that round every `checkpoint_every` rounds and at the end, with
`ckpt/<r>` and `AI_<job>` written in one KV transaction; each worker also uploads its own state
(`ckpt/<r>/worker/<i>`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deaios.training import stages
from deaios.training.compression import Compressor, decompress
from deaios.training.config import JobConfig
from deaios.training.corpus import Corpus, batch_at
from deaios.training.inner import InnerTrainer
from deaios.training.ledger import (
    Ledger, ckpt_key, claim_key, close_key, model_key, registry_stream, report_key,
)
from deaios.errors import UserError
from deaios.training.network import Network, purpose
from deaios.training.outer import average
from deaios.training.state import GlobalState, pack_local, unpack_local

log = logging.getLogger(__name__)
POLL = 0.25  # s between two looks at an open round (one KV listing of its reports and close)
STOPPED_EVERY = 4  # polls between two looks at the job's `stopped` key
Tree = dict[str, np.ndarray]


class JobStopped(RuntimeError):
    """The job was stopped (by this worker or another): the message says why."""


@dataclass
class ExchangeResult:
    round: int
    members: list[int]
    avg: list[Tree]
    payload_bytes: int = 0
    stats: list[dict] = field(default_factory=list)
    reason: str = ""
    closed_by: int = -1
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step of the exchange (what idle waits on)


@dataclass
class RoundLine:
    """What the worker prints per round."""

    round: int
    loss: float
    members: list[int]
    idle: float
    train_seconds: float
    bytes_sent: int
    wire_sent: dict[str, int]
    hash: str
    reason: str
    compression: list[dict]
    averaged: int | None  # the round whose average was applied at the end of this one (r, or r − 1 with delay)
    phases: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"round": self.round, "loss": round(self.loss, 4), "averagedRound": self.averaged,
                "members": self.members,
                "idleSeconds": round(self.idle, 3), "trainSeconds": round(self.train_seconds, 3),
                "bytesSent": self.bytes_sent, "wireBytesSent": self.wire_sent, "hash": self.hash,
                "closed": self.reason, "compression": self.compression,
                "exchangeSeconds": {k: round(v, 3) for k, v in self.phases.items()}}


async def load_job(ledger: Ledger, net: Network) -> tuple[JobConfig, dict[str, Any], Corpus]:
    record = await ledger.job()
    if not record:
        raise UserError(f"job {ledger.job_id!r} does not exist in this stack's KV (start it with `deaios train "
                         f"start JOB.toml`)")
    job = JobConfig.from_json(record["config"])
    corpus = Corpus.load(await net.download(record["corpusRoot"]))
    return job, record, corpus


class Worker:
    def __init__(self, net: Network, job_id: str, index: int | None, on_round: Callable[[RoundLine], None],
                 progress: Callable[[int, int, int, float], None] | None = None, stop_after: int | None = None,
                 say: Callable[[str], None] = lambda message: None,
                 key_for: Callable[[int], str] | None = None) -> None:
        self.net, self.job_id, self.requested_index, self.key_for = net, job_id, index, key_for
        self.on_round, self.progress, self.stop_after, self.say = on_round, progress, stop_after, say
        self.ledger = Ledger(net.kv, job_id)
        self.futures: list[Future] = []

    # -- set-up --------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.job, self.record, self.corpus = self.net.run(load_job(self.ledger, self.net))
        self.k = self.job.train.workers
        if self.requested_index is not None and not 0 <= self.requested_index < self.k:
            raise UserError(f"--index {self.requested_index}: the job has workers 0…{self.k - 1}")
        self.trainer = InnerTrainer(self.job)
        self.windows = self.corpus.eval_windows(self.job.model.seq_len)
        probe = GlobalState.initial(self.job)
        self.trainer.warm_up(probe.params, self.windows)  # compile before taking part: rounds start together
        probe.warm_up()
        self.index = self.net.run(self._claim())
        self.compressor = Compressor(self.job.compression)
        self.shard = self.corpus.shard(self.k, self.index)
        self.state, self.inner_state, self.residuals, self.position = self._resume()
        self.say(f"worker {self.index} of job {self.job_id}: from round {self.state.round} "
                 f"(data position {self.position})")

    async def _claim(self) -> int:
        """This worker's slot: --index (a restart takes its slot back), else the first unclaimed one, taken by
        compare-and-swap so that two workers starting together never share a slot."""
        while True:
            claims = await self.ledger.items("worker/")
            taken = {int(key.split("/")[1]) for key in claims}
            if self.requested_index is not None:
                index = self.requested_index
                if not 0 <= index < self.k:
                    raise UserError(f"--index {index}: the job has workers 0…{self.k - 1}")
            else:
                free = [i for i in range(self.k) if i not in taken]
                if not free:
                    raise UserError(f"every worker slot of job {self.job_id} is claimed ({self.k}); restart a "
                                    f"worker with --index I")
                index = free[0]
            if self.key_for is not None:
                self.net.set_key(self.key_for(index))
            claim = {"address": self.net.kv_address, "host": socket.gethostname(), "pid": os.getpid(),
                     "at": time.time()}
            if self.requested_index is not None:
                outcome = await self.net.commit(self.net.kv.batch().set(self.ledger.stream, claim_key(index),
                                                                        json.dumps(claim)))
                won = claim if outcome.ok else {}
            else:
                won = await self.ledger.put_if_absent(claim_key(index), claim, self.net.commit)
                outcome = None
            if won == claim:
                return index
            if outcome is not None or not won:
                result = outcome.result if outcome else "rejected"
                raise JobStopped(f"account {self.net.kv_address} may not write job {self.job_id}'s ledger "
                                 f"({result}); the job's [train] accounts list who may")
            # another worker took this slot first: try the next free one

    def _resume(self) -> tuple[GlobalState, Any, list[Tree | None], int]:
        checkpoints = self.net.run(self.ledger.checkpoints())
        inner_state, residuals = None, [None] * self.job.outer.stages
        position = 0
        if checkpoints:
            s = max(checkpoints)
            root = checkpoints[s]["path"].removeprefix("log://")
            state, _ = GlobalState.unpack(self.job, self.net.run(self.net.download(root)))
            own = self.net.run(self.ledger.get(ckpt_key(s, self.index)))
            if own:
                arrays, residuals, position, self.carry, _ = unpack_local(self.net.run(self.net.download(
                    own["path"].removeprefix("log://"))))
                inner_state = self.trainer.state_from_arrays(state.params, arrays)
            else:
                position = state.positions.get(self.index, 0)
        else:
            state = GlobalState.initial(self.job)
        if inner_state is None:
            inner_state = self.trainer.init(state.params)
        rounds = self.net.run(self.ledger.rounds())
        mine = [rep.get("position", 0) for entry in rounds.values() for i, rep in entry["reports"].items()
                if i == self.index]
        if own_position := max(mine, default=0):
            if not checkpoints or not own:
                position = max(position, own_position)
        self.replayed_from = state.round
        while state.round in rounds and rounds[state.round]["close"]:
            r = state.round
            avg = self.net.run(self._average(r, rounds[r]["close"]["members"], rounds[r]["reports"], None))
            self._transition(state, avg)
        return state, inner_state, residuals, position

    def _transition(self, state: GlobalState, avg: list[Tree]) -> None:
        """S_r → S_{r+1} for a round whose average is known (replay)."""
        if self.job.outer.delay:
            state.advance()
            state.receive(avg)
        else:
            state.receive(avg)
            state.advance()

    def _compress(self, deltas: list[Tree]) -> tuple[list[bytes], list[dict]]:
        """Compress this round's Δ per stage with error feedback (main thread, in round order): the payloads,
        their stats; the residuals carried into the next round replace `self.residuals`."""
        compressed = [self.compressor.compress(d, res) for d, res in zip(deltas, self.residuals)]
        self.residuals = [c[1] for c in compressed]
        return [c[0] for c in compressed], [c[2].summary() for c in compressed]

    # -- the exchange (network thread) ---------------------------------------------------------------------
    async def _average(self, r: int, members: list[int], reports: dict[int, dict], own: list[bytes] | None,
                       simulate_link: bool = False) -> list[Tree]:
        async def payloads(i: int) -> list[bytes]:
            if own is not None and i == self.index:
                return own
            roots = reports[i]["stages"]
            return list(await asyncio.gather(*(self.net.download(root, simulate_link) for root in roots)))
        missing = [i for i in members if i not in reports]
        if missing:
            raise JobStopped(f"round {r} was closed with members {missing} that have no report")
        files = await asyncio.gather(*(payloads(i) for i in sorted(members)))
        decoded = await asyncio.to_thread(lambda: [[decompress(p) for p in per] for per in files])
        return [average([d[s] for d in decoded]) for s in range(self.job.outer.stages)]

    async def _wait_close(self, r: int, reported_at: float | None) -> dict[str, Any]:
        prev = await self.ledger.get(close_key(r - 1)) if r > 0 else None
        expected = set(prev["members"]) if prev else set(range(self.k))
        started = time.monotonic()
        complete_since: float | None = None
        for polls in itertools.count():
            entry = await self.ledger.round(r)  # the reports and the close in one listing
            if entry["close"]:
                return entry["close"]
            if polls % STOPPED_EVERY == 0:
                stopped = await self.ledger.stopped()
                if stopped:
                    raise JobStopped(f"job stopped by worker {stopped.get('by')}: {stopped.get('reason')}")
            reports = entry["reports"]
            now = time.monotonic()
            since = reported_at if reported_at is not None else started
            if expected <= set(reports):
                complete_since = complete_since or now
                first = min(reports) == self.index
                if reported_at is not None and (first or now - complete_since > self.job.elastic.close_grace):
                    return await self._close(r, sorted(reports), "all")
            elif now - since > self.job.elastic.round_deadline and reports:
                return await self._close(r, sorted(reports), "deadline")
            await asyncio.sleep(POLL)
        raise AssertionError("unreachable")

    async def _close(self, r: int, members: list[int], reason: str) -> dict[str, Any]:
        record = {"members": members, "by": self.index, "reason": reason, "at": int(time.time())}
        return await self.ledger.try_close(r, record, self.net.commit)

    async def exchange(self, r: int, sending: tuple[list[bytes], list[dict]] | None, x_hash: str,
                       extra: dict[str, Any], after: Future | None = None) -> ExchangeResult:
        """Round r's exchange; `sending` None: only collect the average (a worker joining mid-round). With
        `after` (the previous round's exchange, still in flight) the files and the report go out at once, and
        the wait for the round's close starts when the previous round is closed (its members are expected)."""
        purpose.set("exchange")
        own_payloads: list[bytes] | None = None
        stats, sent, reported_at = [], 0, None
        phases: dict[str, float] = {}
        clock = time.monotonic()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.monotonic()
            phases[name], clock = now - clock, now
        if sending is not None:
            own_payloads, stats = sending
            roots = list(await asyncio.gather(*(self.net.upload(p, simulate_link=True) for p in own_payloads)))
            sent = sum(len(p) for p in own_payloads)
            lap("upload")
            report = {"stages": roots, "hash": x_hash, "bytes": sent, "compression": stats, **extra}
            outcome = await self.net.commit(self.net.kv.batch().set(
                self.ledger.stream, report_key(r, self.index), json.dumps(report, sort_keys=True)))
            if not outcome.ok:
                raise JobStopped(f"the report of round {r} was rejected: {outcome.result}")
            reported_at = time.monotonic()
            lap("report")
        if after is not None:
            await asyncio.wrap_future(after)
            lap("previous")
        close = await self._wait_close(r, reported_at)
        lap("close")
        reports = await self.ledger.reports(r)
        bad = {i: reports[i].get("hash") for i in close["members"] if reports.get(i, {}).get("hash") != x_hash}
        if bad:
            reason = (f"parameter hash mismatch at round {r}: worker {self.index} has {x_hash}, "
                      + ", ".join(f"worker {i} has {h}" for i, h in sorted(bad.items())))
            await self.net.commit(self.net.kv.batch().set(self.ledger.stream, "stopped", json.dumps(
                {"reason": reason, "by": self.index, "round": r})))
            raise JobStopped(reason)
        avg = await self._average(r, close["members"], reports, own_payloads if self.index in close["members"]
                                  else None, simulate_link=True)
        lap("average")
        return ExchangeResult(r, close["members"], avg, sent, stats, close["reason"], close["by"], phases)

    # -- the training loop (main thread) -------------------------------------------------------------------
    def run(self) -> GlobalState:
        job, state = self.job, self.state
        h, rounds = job.train.inner_steps, job.train.rounds
        inflight: Future[ExchangeResult] | None = None
        last: ExchangeResult | None = None
        self.local_at: dict[int, tuple[Any, int, Tree | None, list[Tree | None]]] = {}
        self.total_sent = 0
        if job.outer.delay and state.round < rounds and not self._expected(state.round):
            reported = self.net.run(self.ledger.reports(state.round))
            if reported and self.index not in reported:  # the others are past this round: join the next
                x_hash = state.hash()
                inflight = self.net.submit(self.exchange(state.round, None, x_hash, {}))
                state.advance()
        while state.round < rounds:
            r = state.round
            self.local_at = {k: v for k, v in self.local_at.items() if k >= r - 2}
            self.local_at[r] = (self.inner_state, self.position, self.carry, self.residuals)
            x_hash = state.hash()
            # with the delay a worker continues from its own progress on top of the global weights, which
            # lack the average still in flight: start = x − Δ_{r−1} (its last pseudo-gradient)
            x_r = state.params if self.carry is None else {n: (v - self.carry[n]).astype(np.float32)
                                                           for n, v in state.params.items()}
            started = time.perf_counter()
            start_position = self.position
            local, self.inner_state, loss = self.trainer.run(
                x_r, self.inner_state,
                lambda step: batch_at(self.shard, job.train.seed, self.index, start_position + step,
                                      job.train.batch_size, job.model.seq_len),
                h, (lambda step, value: self.progress(r, step + 1, h, value)) if self.progress else None)
            self.position += h
            train_seconds = time.perf_counter() - started
            deltas = [{n: (g[n] - l[n]).astype(np.float32) for n in g}
                      for g, l in zip(stages.split(x_r, state.groups), stages.split(local, state.groups))]
            if job.outer.delay:
                self.carry = stages.merge(deltas)
            extra = {"loss": loss, "position": self.position, "trainSeconds": round(train_seconds, 3)}
            sending = self._compress(deltas)
            idle_started = time.perf_counter()
            if job.outer.delay:
                # round r's files and report go out before round r − 1's average is collected (unless the
                # job stops at this round's checkpoint), so a late exchange does not delay the next one
                stops_here = self.stop_after is not None and (self._stopping() or (
                    r >= self.stop_after and inflight is not None and self._checkpoint_due(r)))
                previous = inflight
                inflight = None if stops_here else self.net.submit(self.exchange(r, sending, x_hash, extra, previous))
                result = self._collect(previous) if previous else None
                idle = time.perf_counter() - idle_started
                if result:
                    state.receive(result.avg)
                    self._maybe_checkpoint(state, result)
                    last = result
                if self._stopping():
                    self._show(r, loss, result, idle, train_seconds, x_hash)
                    break
                state.advance()
                shown = result
            else:
                result = self._collect(self.net.submit(self.exchange(r, sending, x_hash, extra)))
                idle = time.perf_counter() - idle_started
                state.receive(result.avg)
                state.advance()
                self._maybe_checkpoint(state, result)
                last = shown = result
            self._show(r, loss, shown, idle, train_seconds, x_hash)
            if self._stopping():
                break
        else:
            if inflight:
                waited = time.perf_counter()
                last = self._collect(inflight)
                self.final_idle = time.perf_counter() - waited
                state.receive(last.avg)
            state.finish()
            self._checkpoint(state, last, final=True)
        for future in self.futures:
            future.result()
        return state

    _checkpointed_round = -1
    carry: Tree | None = None  # with the delay: this worker's last pseudo-gradient (its progress not yet global)
    final_idle = 0.0  # with the delay: the wait for the last round's exchange after training ended

    def _expected(self, r: int) -> bool:
        """Whether the others wait for this worker in round r (every slot in round 0, else the members of r − 1)."""
        if r == 0:
            return True
        prev = self.net.run(self.ledger.get(close_key(r - 1)))
        return bool(prev) and self.index in prev["members"]

    def _stopping(self) -> bool:
        return self.stop_after is not None and self._checkpointed_round >= self.stop_after

    def _show(self, r: int, loss: float, shown: ExchangeResult | None, idle: float, train_seconds: float,
              x_hash: str) -> None:
        self.on_round(RoundLine(r, loss, shown.members if shown else [], idle, train_seconds, self.total_sent,
                                dict(self.net.wire), x_hash, shown.reason if shown else "in flight",
                                shown.stats if shown else [], shown.round if shown else None,
                                shown.phases if shown else {}))

    def _collect(self, future: Future[ExchangeResult]) -> ExchangeResult:
        result = future.result()
        self.total_sent += result.payload_bytes
        return result

    # -- checkpoints ---------------------------------------------------------------------------------------
    def _checkpoint_due(self, s: int) -> bool:
        return s % self.job.elastic.checkpoint_every == 0 and 0 < s < self.job.train.rounds

    def _maybe_checkpoint(self, state: GlobalState, result: ExchangeResult) -> None:
        if self._checkpoint_due(state.round):
            self._checkpoint(state, result)

    def _checkpoint(self, state: GlobalState, result: ExchangeResult | None, final: bool = False) -> None:
        """Write S_round: the global file (only the worker that closed the deciding round, or worker of the
        lowest index on the final one) and this worker's own state."""
        s = state.round
        closer = result.closed_by == self.index if result else self.index == 0
        inner, position, carry, residuals = self.local_at.get(
            s, (self.inner_state, self.position, self.carry, self.residuals))
        own = pack_local(self.trainer.state_arrays(inner), residuals, position, carry,
                         {"job": self.job_id, "round": s, "worker": self.index})
        self.futures.append(self.net.submit(self._write_own(s, own)))
        if closer:
            eval_loss = self.trainer.evaluate(state.params, self.windows)
            state.positions[self.index] = position
            data = state.pack({"final": final})
            self.futures.append(self.net.submit(self._write_global(s, data, eval_loss, state.hash(), final)))
        self._checkpointed_round = s

    async def _write_own(self, s: int, data: bytes) -> None:
        purpose.set("checkpoint")
        root = await self.net.upload(data)
        await self.net.commit(self.net.kv.batch().set(self.ledger.stream, ckpt_key(s, self.index),
                                                      json.dumps({"path": f"log://{root}"})))

    async def _write_global(self, s: int, data: bytes, eval_loss: float, x_hash: str, final: bool) -> None:
        purpose.set("checkpoint")
        root = await self.net.upload(data)
        record = {"name": self.job.name, "path": f"log://{root}", "round": s, "eval_loss": round(eval_loss, 5),
                  "job": self.job_id, "hash": x_hash, "final": final, "bytes": len(data)}
        outcome = await self.net.commit(self.net.kv.batch()
                                        .set(self.ledger.stream, ckpt_key(s), json.dumps(record, sort_keys=True))
                                        .set(registry_stream(), model_key(self.job_id), json.dumps(record, sort_keys=True)))
        if not outcome.ok:
            log.warning("checkpoint record of round %d rejected: %s", s, outcome.result)
        self.say(f"checkpoint of round {s}: log://{root} (held-out loss {eval_loss:.4f})")
