"""The configuration search behind `deaios bench train`'s defaults (docs/benchmarks.md, DiLoCoX training).

Each variant is a JSON object of job-file overrides ({"outer": {"momentum": 0.6}, "train": {...}, ...}) on top
of the benchmark's job (`bench_job`, shape from the command line); "dp" runs the data-parallel baseline with
the same job's inner optimizer. Every variant prints one JSON line: held-out loss, bytes per worker and the
reduction vs data-parallel fp32 all-reduce (4·P bytes per step per worker).

    nice -n 10 python scripts/train_search.py --rounds 8 --inner-steps 25 \
        '{"name": "dp"}' '{"name": "m0.6", "outer": {"momentum": 0.6}}'
"""

from __future__ import annotations

import json
import sys
import tomllib

import click


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


@click.command()
@click.option("--workers", default=4)
@click.option("--rounds", default=8)
@click.option("--inner-steps", default=25)
@click.option("--d-model", default=64)
@click.option("--layers", default=2)
@click.option("--seq-len", default=64)
@click.option("--batch", default=8)
@click.argument("variants", nargs=-1)
def main(workers: int, rounds: int, inner_steps: int, d_model: int, layers: int, seq_len: int, batch: int,
         variants: tuple[str, ...]) -> None:
    from deaios.training import runtime
    from deaios.training.bench import bench_job
    from deaios.training.config import JobConfig
    from deaios.training.corpus import Corpus, build
    from deaios.training.model import count_params, init_params
    from deaios.training.simulate import run_data_parallel, run_diloco

    runtime.configure()
    shape = dict(workers=workers, rounds=rounds, inner_steps=inner_steps, d_model=d_model, layers=layers,
                 seq_len=seq_len, batch=batch)
    base = tomllib.loads(bench_job(**shape, delay=True, compression="adaptive"))
    corpus = None
    for text in variants:
        variant = json.loads(text)
        name = variant.pop("name", text)
        data = merge(base, variant)
        job = JobConfig.from_json({**data.pop("job"), **data})
        if corpus is None:
            corpus = Corpus.load(build(job.corpus)[0])
        n = count_params(init_params(job.model, job.train.seed))
        dp_bytes = 4 * n * job.train.rounds * job.train.inner_steps
        say = lambda m: click.echo(m, err=True)  # noqa: E731
        result = run_data_parallel(job, corpus, say) if name.startswith("dp") else run_diloco(job, corpus, name, say)
        click.echo(json.dumps({"name": name, "loss": round(result.eval_loss, 4), "bytes": result.bytes_per_worker,
                               "reduction": round(dp_bytes / max(1, result.bytes_per_worker), 1),
                               "seconds": round(result.seconds, 1), "curve": [round(x, 3) for x in result.curve],
                               "variant": variant}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
