"""The DiLoCoX pieces without a network: the outer step against a hand computation, compression within its
stated error with error feedback, the one-step delay, checkpoints, corpus shards and job files."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from deaios.training import stages, tensorfile
from deaios.training.compression import Compressor, decompress, dequantize, quantize
from deaios.training.config import CompressionConfig, JobConfig
from deaios.training.corpus import Corpus, batch_at, build
from deaios.training.outer import OuterOptimizer, average
from deaios.training.state import GlobalState, pack_local, unpack_local

TINY = {"model": {"d_model": 16, "layers": 1, "heads": 2, "seq_len": 16},
        "train": {"workers": 2, "rounds": 3, "inner_steps": 2, "batch_size": 2}}


def test_outer_step_matches_a_hand_computed_nesterov_step() -> None:
    lr, mu = 0.7, 0.9
    outer = OuterOptimizer(lr, mu)
    x = {"w": np.array([1.0, -2.0, 0.5], np.float32)}
    state = outer.init(x)
    g1 = {"w": np.array([0.1, 0.2, -0.3], np.float32)}
    g2 = {"w": np.array([-0.05, 0.1, 0.0], np.float32)}
    x1, state = outer.step(x, state, g1)
    x2, state = outer.step(x1, state, g2)
    # by hand: m1 = g1; x1 = x − lr·(g1 + μ·m1); m2 = μ·m1 + g2; x2 = x1 − lr·(g2 + μ·m2)
    m1 = np.array([0.1, 0.2, -0.3])
    e1 = np.array([1.0, -2.0, 0.5]) - lr * (m1 + mu * m1)
    m2 = mu * m1 + np.array([-0.05, 0.1, 0.0])
    e2 = e1 - lr * (np.array([-0.05, 0.1, 0.0]) + mu * m2)
    np.testing.assert_allclose(x1["w"], e1, rtol=1e-6)
    np.testing.assert_allclose(x2["w"], e2, rtol=1e-6)
    # the pseudo-gradient's sign: a worker that moved by +d (Δ = −d) pulls the global weights towards +d
    moved, _ = outer.step(x, outer.init(x), {"w": -np.ones(3, np.float32)})
    assert (moved["w"] > x["w"]).all()


def test_average_is_the_mean_in_worker_order_and_deterministic() -> None:
    rng = np.random.default_rng(1)
    deltas = [{"a": rng.normal(size=(5, 3)).astype(np.float32)} for _ in range(3)]
    avg = average(deltas)
    np.testing.assert_allclose(avg["a"], np.mean([d["a"] for d in deltas], axis=0), atol=1e-7)
    assert avg["a"].dtype == np.float32 and average(deltas)["a"].tobytes() == avg["a"].tobytes()
    with pytest.raises(ValueError):
        average([])


@pytest.mark.parametrize("bits, bound", [(8, 1 / 254), (4, 1 / 14)])
def test_quantization_error_is_within_half_a_step_of_each_block(bits: int, bound: float) -> None:
    x = np.random.default_rng(bits).standard_t(3, size=1000).astype(np.float32)
    codes, scales = quantize(x, bits, 64)
    back = dequantize(codes, scales, bits, 64, x.shape)
    padded = np.zeros(1024, np.float32)
    padded[:1000] = x
    block_max = np.repeat(np.abs(padded.reshape(-1, 64)).max(axis=1), 64)[:1000]
    assert (np.abs(back - x) <= block_max * bound * (1 + 1e-5) + 1e-12).all()
    assert codes.nbytes == (1024 if bits == 8 else 512)


def test_low_rank_keeps_the_stated_energy_and_error_feedback_carries_the_residual() -> None:
    rng = np.random.default_rng(7)
    low = rng.normal(size=(64, 3)) @ rng.normal(size=(3, 96))
    matrix = (low + 0.05 * rng.normal(size=(64, 96))).astype(np.float32)
    config = CompressionConfig(energy=0.9, int4_max_error=0.15)
    compressor = Compressor(config)
    delta = {"m": matrix, "v": rng.normal(size=96).astype(np.float32)}
    payload, residual, stats = compressor.compress(delta, None)
    sent = decompress(payload)
    choice = {t.name: t for t in stats.tensors}
    assert choice["m"].kind == "lowrank" and 1 <= choice["m"].rank <= 16 and choice["m"].energy >= 0.9
    # stated error: the discarded singular values are ≤ (1 − energy) of the energy, plus quantization
    assert np.linalg.norm(matrix - sent["m"]) / np.linalg.norm(matrix) <= np.sqrt(1 - 0.9) + 0.15
    assert stats.bytes < stats.raw_bytes / 8
    # error feedback: exactly what was not sent is carried, and added to the next round's target
    for name in delta:
        np.testing.assert_allclose(residual[name], delta[name] - sent[name], atol=1e-6)
    zero = {n: np.zeros_like(v) for n, v in delta.items()}
    payload2, residual2, _ = compressor.compress(zero, residual)
    sent2 = decompress(payload2)
    np.testing.assert_allclose(sent2["m"] + residual2["m"], residual["m"], atol=1e-6)
    # over both rounds the receiver got the pseudo-gradient minus only the latest residual
    total_sent = sent["m"] + sent2["m"]
    assert np.linalg.norm(matrix - total_sent) < np.linalg.norm(matrix - sent["m"])


def test_no_compression_sends_float32_exactly() -> None:
    delta = {"m": np.random.default_rng(3).normal(size=(8, 8)).astype(np.float32)}
    payload, residual, _ = Compressor(CompressionConfig(mode="none")).compress(delta, None)
    assert residual is None and decompress(payload)["m"].tobytes() == delta["m"].tobytes()
    with pytest.raises(ValueError):
        decompress(payload[:-3])
    with pytest.raises(ValueError):
        decompress(b"junk")


def test_one_step_delay_applies_each_average_one_round_late_and_finish_flushes() -> None:
    plain = GlobalState.initial(JobConfig.from_json({**TINY, "outer": {"delay": False, "stages": 2}}))
    delayed = GlobalState.initial(JobConfig.from_json({**TINY, "outer": {"delay": True, "stages": 2}}))
    start = plain.hash()
    assert delayed.hash() == start
    rng = np.random.default_rng(0)
    avgs = [[{n: rng.normal(scale=1e-3, size=v.shape).astype(np.float32) for n, v in part.items()}
             for part in plain.stage_params()] for _ in range(2)]
    plain.receive(avgs[0]); plain.advance()
    delayed.advance(); delayed.receive(avgs[0])
    assert plain.hash() != start and delayed.hash() == start  # round 1 starts from x_0 with the delay
    plain.receive(avgs[1]); plain.advance()
    delayed.advance(); delayed.receive(avgs[1])
    delayed.finish()
    assert delayed.hash() == plain.hash()  # the same outer steps in the same order, one round later


def test_checkpoint_round_trip_keeps_params_outer_state_pending_and_positions() -> None:
    job = JobConfig.from_json({**TINY, "outer": {"delay": True, "stages": 2}})
    state = GlobalState.initial(job)
    avg = [{n: np.full(v.shape, 1e-3, np.float32) for n, v in part.items()} for part in state.stage_params()]
    state.advance(); state.receive(avg); state.advance(); state.receive(avg)
    state.positions = {0: 8, 1: 6}
    loaded, meta = GlobalState.unpack(job, state.pack({"final": False}))
    assert loaded.hash() == state.hash() and loaded.round == 2 and loaded.positions == {0: 8, 1: 6}
    assert meta["final"] is False and loaded.pending is not None
    state.advance(); loaded.advance()  # same momentum, same pending: the same next step
    assert loaded.hash() == state.hash()
    blob = state.pack()
    with pytest.raises(ValueError):
        GlobalState.unpack(job, blob.replace(b'"hash":"0x', b'"hash":"0y', 1))
    local = pack_local([np.arange(3.0)], [None, {"w": np.ones(2, np.float32)}], 12, {"w": np.zeros(2, np.float32)},
                       {"worker": 1})
    inner, residuals, position, carry, _ = unpack_local(local)
    assert position == 12 and residuals[0] is None and residuals[1]["w"].tolist() == [1, 1]
    assert carry is not None and carry["w"].tolist() == [0, 0]
    assert unpack_local(pack_local([], [None], 0, None, {}))[3] is None


def test_stages_cover_every_parameter_once() -> None:
    job = JobConfig.from_json({**TINY, "model": {"d_model": 16, "layers": 3, "heads": 2, "seq_len": 16}})
    state = GlobalState.initial(JobConfig.from_json({**job.to_json(), "outer": {"stages": 3}}))
    parts = state.stage_params()
    assert len(parts) == 3 and all(parts)
    assert sorted(n for p in parts for n in p) == sorted(state.params)
    assert stages.merge(parts).keys() == state.params.keys()


def test_corpus_is_deterministic_and_shards_are_disjoint(tmp_path) -> None:
    for i in range(30):
        (tmp_path / f"f{i}.txt").write_text(f"file {i}\n" + "lorem ipsum dolor sit amet\n" * 40)
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00" * 100)
    config = JobConfig.from_json({"corpus": {"max_bytes": 20000, "eval_bytes": 2048}}).corpus
    data, summary = build(config, tmp_path)
    assert build(config, tmp_path)[0] == data and summary["evalBytes"] == 2048
    corpus = Corpus.load(data)
    assert b"\xff\xfe" not in corpus.train.tobytes()
    a, b = corpus.shard(2, 0), corpus.shard(2, 1)
    assert len(a) == len(b) and a.tobytes() + b.tobytes() == corpus.train[:2 * len(a)].tobytes()
    first = batch_at(a, 0, 0, 5, 4, 16)
    assert first.shape == (4, 17) and (batch_at(a, 0, 0, 5, 4, 16) == first).all()
    assert not (batch_at(a, 0, 0, 6, 4, 16) == first).all()
    with pytest.raises(ValueError, match="too little text"):
        build(config, tmp_path / "missing") if (tmp_path / "missing").mkdir() is None else None


def test_stdlib_corpus_is_found_through_sysconfig() -> None:
    config = JobConfig.from_json({"corpus": {"max_bytes": 60000, "eval_bytes": 4096}}).corpus
    data, summary = build(config)
    assert summary["trainBytes"] == 60000 - 4096 and "stdlib" in summary["source"]
    assert b"def " in Corpus.load(data).train.tobytes()


@pytest.mark.parametrize("text, message", [
    ("[model]\nd_model = 10\nheads = 4", "multiple of model.heads"),
    ("[train]\nworkerz = 3", "unknown key"),
    ("[train]\nworkers = \"3\"", "must be int"),
    ("[outer]\nstages = 9", "outer.stages"),
    ("[compression]\nmode = \"zip\"", "compression.mode"),
    ("[job]\nid = \"bad id!\"", "job id"),
    ("[train]\naccounts = [\"0x12\"]", "train.accounts"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_job_files_are_rejected_with_the_key_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JobConfig.from_toml(text)


def test_job_file_is_canonical_and_round_trips() -> None:
    config = JobConfig.from_toml("[job]\nid = \"x\"\n[train]\nworkers = 4\ninner_lr = 1\n")
    assert config.train.inner_lr == 1.0 and JobConfig.from_json(config.to_json()) == config
    assert config.canonical() == JobConfig.from_json(config.to_json()).canonical()


def test_tensorfile_rejects_truncation_and_trailing_bytes() -> None:
    blob = tensorfile.pack({"a": np.arange(6, dtype=np.int32).reshape(2, 3)}, {"k": 1})
    arrays, meta = tensorfile.unpack(blob)
    assert arrays["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and meta == {"k": 1}
    for bad in (blob[:-1], blob + b"x", b"DXT0" + blob[4:]):
        with pytest.raises(ValueError):
            tensorfile.unpack(bad)


def test_deflated_tensorfile_round_trips_and_rejects_truncation_and_bombs(monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = {"a": np.zeros((64, 64), np.float32), "b": np.arange(5, dtype=np.int8)}
    blob = tensorfile.pack(arrays, {"k": 1}, deflate=True)
    assert blob[:4] == b"DXZ1" and len(blob) < len(tensorfile.pack(arrays, {"k": 1})) / 10
    back, meta = tensorfile.unpack(blob)
    assert meta == {"k": 1} and all(back[n].tobytes() == arrays[n].tobytes() for n in arrays)
    for bad in (blob[:-4], blob[:4] + b"junk", blob + b"x"):
        with pytest.raises(ValueError):
            tensorfile.unpack(bad)
    monkeypatch.setattr(tensorfile, "MAX_INFLATED", 1 << 16)
    bomb = b"DXZ1" + zlib.compress(b"\0" * (1 << 20), 9)
    with pytest.raises(ValueError, match="inflates beyond"):
        tensorfile.unpack(bomb)
