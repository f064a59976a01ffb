"""Generate the gRPC stubs of `offchain/deaios/da/proto/disperser.proto` with grpcio-tools (`make proto`).

The stubs (`disperser_pb2.py`, `disperser_pb2.pyi`, `disperser_pb2_grpc.py`) are committed next to the .proto so
that an installed deaios needs no code generation; `tests/da/test_disperser_proto.py` regenerates them and fails
if the committed ones differ. `--out DIR` writes them under DIR instead (same relative layout).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOT = ROOT / "offchain"
PROTOS = ["deaios/da/proto/disperser.proto"]


def generate(out: Path = SOURCE_ROOT) -> list[Path]:
    """Run protoc (from grpcio-tools) on every proto; returns the files written."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    for proto in PROTOS:
        (out / proto).parent.mkdir(parents=True, exist_ok=True)
        code = protoc.main(["grpc_tools.protoc", f"-I{SOURCE_ROOT}", f"-I{include}", f"--python_out={out}",
                            f"--pyi_out={out}", f"--grpc_python_out={out}", str(SOURCE_ROOT / proto)])
        if code != 0:
            raise SystemExit(f"protoc failed on {proto} (exit {code})")
    return sorted(p for proto in PROTOS for p in (out / proto).parent.glob(Path(proto).stem + "_pb2*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SOURCE_ROOT)
    args = parser.parse_args()
    for path in generate(args.out):
        print(path.relative_to(args.out) if path.is_relative_to(args.out) else path, file=sys.stderr)


if __name__ == "__main__":
    main()
