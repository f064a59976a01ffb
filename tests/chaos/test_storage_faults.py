"""Storage network under faults: 30 % of the nodes SIGKILLed during an upload and during a download, share
files damaged on disk, a disk that fills up. Each case ends with byte-exact downloads of
everything a client was told was stored.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from pathlib import Path

import aiohttp
import pytest
from chaos_helpers import Case, Chaos, download_exact, make_file, no_tracebacks

from deaios.chaos import faults
from deaios.procs import rpc_call
from deaios.storage.erasure import ErasureCode, data_segments, segment_lengths
from deaios.storage.flow_client import FlowClient
from deaios.storage.merkle import SEGMENT_SIZE, FileMerkleTree
from deaios.storage.share_transport import ShareClient

BIG = 48_000_000  # 184 segments: an upload or a download lasts long enough to be interrupted


def with_others_down(chaos: Chaos, keep: list[int], files: dict[str, Path], work: Path, seed: int) -> int:
    """Kill 3 nodes other than `keep`, download every file byte-exact from the 7 left (so the nodes in `keep`
    must serve correct shares), restart them; bytes checked."""
    victims = random.Random(seed).sample([n for n in range(10) if n not in keep], 3)
    faults.kill_storage_nodes(chaos.path, victims)
    try:
        return sum(download_exact(chaos, root, path, work / f"{root[:10]}.7of10") for root, path in files.items())
    finally:
        faults.restart_storage_nodes(chaos.path, victims)


def test_30_percent_killed_during_an_upload(chaos: Chaos, work: Path) -> None:
    seed = random.randrange(1 << 30)
    original, root = make_file(work / "big.bin", BIG, seed)
    victims = random.Random(seed).sample(range(10), 3)
    total = data_segments(BIG)
    with Case("storage: 30 % of the nodes SIGKILLed during an upload", f"SIGKILL nodes {victims} (seed {seed}) "
              "once shares were arriving; restart") as case:
        upload = chaos.popen("storage", "upload", str(original))
        deadline = time.monotonic() + 900  # a loaded machine starts a 48 MB transfer slowly
        while True:  # kill once some node holds some, not all, of its shares
            missing = asyncio.run(faults.missing_shares(chaos.path, [root]))
            if any(0 < m < total for m in missing.values()):
                break
            assert upload.poll() is None and time.monotonic() < deadline, "the upload ended before the kill"
            time.sleep(0.02)
        faults.kill_storage_nodes(chaos.path, victims)
        out, err = upload.communicate(timeout=300)
        if upload.returncode != 0:  # not acknowledged: it must say why, and a re-run resumes it
            assert "Traceback" not in err, err
            chaos("storage", "upload", str(original))
            case.notes = "the first upload was refused; its re-run resumed"
        else:
            assert "lack some shares" in err, err  # acknowledged with ≥ 7 holders; the killed nodes are named
        faults.restart_storage_nodes(chaos.path, victims)
        repaired = faults.wait_repaired(chaos.path, [root], victims)
        case.checked(f"48 MB file downloaded after the restart (killed nodes repaired in {repaired:.1f} s)",
                     download_exact(chaos, root, original, work / "big.out"))
        case.checked("and again with 3 other nodes down (the repaired shares serve)",
                     with_others_down(chaos, victims, {root: original}, work, seed))


def test_30_percent_killed_during_a_download(chaos: Chaos, work: Path) -> None:
    seed = random.randrange(1 << 30)
    original, root = make_file(work / "big2.bin", BIG, seed)
    chaos("storage", "upload", str(original))
    victims = random.Random(seed).sample(range(10), 3)
    out = work / "big2.out"
    partial = out.with_name(f".{out.name}.part")
    with Case("storage: 30 % of the nodes SIGKILLed during a download", f"SIGKILL nodes {victims} (seed {seed}) "
              "once the download had written bytes; restart") as case:
        download = chaos.popen("storage", "download", root, "-o", str(out))
        deadline = time.monotonic() + 900  # a loaded machine starts a 48 MB transfer slowly
        while not (partial.exists() and partial.stat().st_size > 0):
            assert download.poll() is None and time.monotonic() < deadline, "the download ended before the kill"
            time.sleep(0.005)
        faults.kill_storage_nodes(chaos.path, victims)
        _, err = download.communicate(timeout=300)
        assert download.returncode == 0, err
        assert out.read_bytes() == original.read_bytes()
        case.checked("48 MB file, the download that lost 3 nodes midway", BIG)
        faults.restart_storage_nodes(chaos.path, victims)
        faults.wait_repaired(chaos.path, [root], victims)


def expected_shares(code: ErasureCode, data: bytes, node: int) -> list[bytes]:
    """Node `node`'s share of every segment of `data`, as placed."""
    lengths = segment_lengths(len(data))
    return [code.encode(data[i * SEGMENT_SIZE:(i + 1) * SEGMENT_SIZE].ljust(lengths[i], b"\0"),
                        [code.share_of(i, node)])[0] for i in range(data_segments(len(data)))]


async def served_shares(chaos: Chaos, node: int, root: str, size: int) -> list[bytes | None]:
    code = ErasureCode.for_nodes(10)
    async with aiohttp.ClientSession() as session:
        client = ShareClient(session, chaos.stack.node_urls)
        sizes = [code.share_size(n) for n in segment_lengths(size)]
        return await client.get_shares(node, bytes.fromhex(root[2:]), 0, sizes[:data_segments(size)])


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_damaged_share_files_are_detected_never_served_and_repaired(chaos: Chaos, work: Path, how: str) -> None:
    seed = random.randrange(1 << 30)
    original, root = make_file(work / "damaged.bin", 5_000_000, seed)
    chaos("storage", "upload", str(original))
    faults.wait_repaired(chaos.path, [root])
    node = random.Random(seed).randrange(10)
    data = original.read_bytes()
    with Case(f"storage: share file {'bit-flipped' if how == 'flip' else 'truncated'} on disk",
              f"node {node}'s share pack of a 5 MB file " + ("XORed at one byte per KiB" if how == "flip" else
                                                            "cut to a third") + f" (seed {seed})") as case:
        damaged = faults.damage_share_pack(chaos.path, node, root, how)
        served = asyncio.run(served_shares(chaos, node, root, len(data)))
        expected = expected_shares(ErasureCode.for_nodes(10), data, node)
        wrong = [i for i, share in enumerate(served) if share is not None and share != expected[i]]
        assert not wrong, f"node {node} served damaged shares of segments {wrong}"
        assert None in served  # detected: the damaged shares are dropped, not served
        # a download through the damaged node (zgs_downloadSegment: it rebuilds from its peers) is exact
        url = chaos.stack.storage_nodes[node]["url"]
        segment = base64.b64decode(rpc_call(url, "zgs_downloadSegment", [root, 0, 1024], timeout=30))
        assert segment == data[:SEGMENT_SIZE]
        repaired = faults.wait_repaired(chaos.path, [root], [node])
        case.notes = f"{damaged:,} bytes damaged; {served.count(None)} of {len(served)} shares withheld, repaired " \
                     f"in {repaired:.1f} s"
        case.checked("the shares the damaged node served (each equal to the re-encoded original, or withheld)",
                     sum(len(s) for s in served if s is not None))
        case.checked("5 MB file with 3 other nodes down (the repaired node's shares used)",
                     with_others_down(chaos, [node], {root: original}, work, seed))


def sdk_segments(tree: FileMerkleTree, data: bytes) -> list[dict]:
    """zgs_uploadSegment arguments for every segment of a file (what the official SDK sends)."""
    out = []
    for i in range(tree.num_segments):
        chunk = data[i * SEGMENT_SIZE:(i + 1) * SEGMENT_SIZE]
        chunk += bytes(-len(chunk) % 256)
        out.append({"root": "0x" + tree.root.hex(), "data": base64.b64encode(chunk).decode(), "index": i,
                    "proof": tree.segment_proof(i).to_json(), "fileSize": len(data)})
    return out


def test_a_disk_that_fills_up(chaos: Chaos, work: Path) -> None:
    seed = random.randrange(1 << 30)
    node = random.Random(seed).randrange(10)
    before, before_root = make_file(work / "before.bin", 2_000_000, seed)
    chaos("storage", "upload", str(before))
    faults.wait_repaired(chaos.path, [before_root])
    files = {before_root: before}
    log = Path(chaos.stack.storage_nodes[node]["log"])
    with Case("storage: a disk that fills up", f"node {node}'s data directory on a tmpfs with 1 MiB free; then "
              "40 MiB more (space returns); then back to its disk") as case:
        with faults.SmallDisk(chaos.path, node, 1 << 20) as disk:
            offset = log.stat().st_size
            # the deaios client: 12 MB (≈ 1.7 MB of shares per node) does not fit on the node
            big, big_root = make_file(work / "full.bin", 12_000_000, seed + 1)
            upload = chaos.raw("storage", "upload", str(big))
            assert upload.returncode == 0, upload.stderr  # 9 nodes hold every segment: acknowledged
            said = " ".join(upload.stderr.split())  # the progress display wraps lines
            assert f"nodes [{node}] lack some shares" in said and "out of disk space" in said, upload.stderr
            files[big_root] = big
            # the official SDK's route: plain segments to the full node itself
            sdk_data = random.Random(seed + 2).randbytes(8 * SEGMENT_SIZE)
            tree = FileMerkleTree.from_bytes(sdk_data)
            FlowClient(chaos.stack.rpc, chaos.stack.flow, chaos.stack.private_key).submit(tree.submission())
            url = chaos.stack.storage_nodes[node]["url"]
            faults.wait_answering(url, "zgs_getStatus", 10, "the full node")
            deadline = time.monotonic() + 30
            while rpc_call(url, "zgs_getFileInfo", ["0x" + tree.root.hex(), False]) is None:
                assert time.monotonic() < deadline, "the full node does not follow the log any more"
                time.sleep(0.1)
            with pytest.raises(RuntimeError, match="out of disk space"):
                for segment in sdk_segments(tree, sdk_data):
                    rpc_call(url, "zgs_uploadSegment", [segment], timeout=30)
            # it keeps serving what it has
            served = asyncio.run(served_shares(chaos, node, before_root, before.stat().st_size))
            assert served == expected_shares(ErasureCode.for_nodes(10), before.read_bytes(), node)
            case.checked("the full node's shares of a file stored before (served, each exact)",
                         sum(len(s) for s in served if s is not None))
            # space returns: the node repairs, the SDK upload completes
            disk.grow(40 << 20)
            for segment in sdk_segments(tree, sdk_data):
                rpc_call(url, "zgs_uploadSegment", [segment], timeout=30)
            sdk_file = work / "sdk.bin"
            sdk_file.write_bytes(sdk_data)
            files["0x" + tree.root.hex()] = sdk_file
            repaired = faults.wait_repaired(chaos.path, list(files))
            case.notes = f"repaired {repaired:.1f} s after space returned"
            no_tracebacks(log, offset)
        offset = log.stat().st_size  # back on its disk (restarted): the node's scrub finds nothing corrupt
        faults.wait_repaired(chaos.path, list(files), [node])
        assert "scrub:" not in log.read_text()[offset:]
        case.checked("every file (before, during, after the full disk) with 3 other nodes down",
                     with_others_down(chaos, [node], files, work, seed))
