"""`deaios status` in the terminal: a snapshot (`deaios.dashboard.snapshot`) as rich tables, one per part of
the network, in the dashboard's order. Sections the stack lacks are left out; a section that could not be read
shows its error."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

STATE_STYLE = {"up": "green", "down": "bold red", "unresponsive": "yellow"}
HEALTH_STYLE = {"full": "green", "degraded": "yellow", "unavailable": "bold red"}
Column = tuple[str, Callable[[dict], Any]]


def short(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"{text[:10]}…{text[-6:]}" if text.startswith("0x") and len(text) > 18 else text


def size(n: float | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def eth(wei: Any) -> str:
    """Wei below a millionth of an ether (compute fees) as wei, larger amounts in ether."""
    if wei is None:
        return ""
    return f"{int(wei)} wei" if int(wei) < 10**12 else f"{int(wei) / 10**18:.6g} ETH"


def table(title: str, columns: Sequence[Column], rows: Sequence[dict], caption: str | None = None) \
        -> RenderableType:
    if not rows:
        return Text.from_markup(f"[bold]{title}[/]: none yet" + (f" ({caption})" if caption else ""))
    out = Table(title=title, title_justify="left", title_style="bold", caption=caption, caption_justify="left",
                box=box.SIMPLE_HEAD)
    cells = [["" if v is None else str(v) for v in (get(row) for _, get in columns)] for row in rows]
    shown = [i for i in range(len(columns)) if any(line[i] for line in cells)]  # drop columns empty everywhere
    for i in shown:
        out.add_column(columns[i][0], overflow="fold")
    for line in cells:
        out.add_row(*(line[i] for i in shown))
    return out


def _usable(console: Console, title: str, section: dict | None) -> bool:
    if not section:
        return False
    if "error" in section:
        console.print(f"[bold]{title}[/]: [red]{section['error']}[/]")
        return False
    return True


def render(s: dict[str, Any], console: Console | None = None) -> None:
    """Print snapshot `s` as tables."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # a log or a pipe: as wide as the tables need, not 80 columns
            console = Console(width=180)
    procs = s["processes"]
    up = sum(p["state"] == "up" for p in procs)
    where = s["stack"]["dir"] + ("" if s["stack"]["running"] else " (stopped)")
    console.print(f"[bold]deaios stack[/] {where}: {up} of {len(procs)} processes up")
    console.print(table("Processes", [
        ("name", lambda p: p["name"]),
        ("state", lambda p: f"[{STATE_STYLE.get(p['state'], '')}]{p['state']}[/]"),
        ("latency", lambda p: f"{p['latency_ms']} ms" if p["latency_ms"] is not None else ""),
        ("version", lambda p: p["version"]), ("pid", lambda p: p["pid"]),
        ("requests", lambda p: int(p["metrics"]["requests"]) if p["metrics"] else ""),
        ("url", lambda p: (p["url"] or "").removeprefix("http://")), ("note", lambda p: p["error"]),
    ], procs))
    if s.get("chain_error"):
        console.print(f"[red]{s['chain_error']}[/]")
        return
    if _usable(console, "Chain", s.get("chain")):
        c = s["chain"]
        console.print(f"[bold]Chain[/] {c['rpc']} (chain id {c['chain_id']}): block {c['block']}, "
                      f"{len(c['contracts'])} contracts deployed at block {c['deploy_block']}")
    if _usable(console, "Files", s.get("files")):
        f = s["files"]

        def rep(x: dict, key: str) -> Any:
            return (x.get("replication") or {}).get(key)
        console.print(table("Files in the log", [
            ("seq", lambda x: x["seq"]), ("root", lambda x: short(x["root"])), ("size", lambda x: size(x["size"])),
            ("tx", lambda x: short(x["tx"])),
            ("shares reachable", lambda x: f"{rep(x, 'shares_reachable')}/{rep(x, 'shares_total')}"
             if x.get("replication") else ""),
            ("min/segment (k)", lambda x: f"{rep(x, 'min_per_segment')} ({rep(x, 'k')})" if x.get("replication") else ""),
            ("health", lambda x: f"[{HEALTH_STYLE.get(rep(x, 'health'), '')}]{rep(x, 'health')}[/]"
             if x.get("replication") else ""),
        ], f["files"], caption=f"{f['count']} files, {size(f['bytes'])}"))
    if _usable(console, "KV", s.get("kv")):
        k = s["kv"]
        st = k.get("status") or {}
        console.print(table("KV writes", [
            ("seq", lambda w: w["seq"]), ("streams", lambda w: " ".join(short(x) for x in w["streams"])),
            ("size", lambda w: size(w["size"])), ("sender", lambda w: short(w["sender"])),
            ("result", lambda w: w["result"]),
        ], k["recent"], caption=f"{len(k['streams'])} streams held; replayed {st.get('nextTxSeq')} of "
                                f"{st.get('logTxs')} log txs; {k['writes']} KV writes"))
    if _usable(console, "DA", s.get("da")):
        d = s["da"]
        console.print(table("DA blobs", [
            ("root", lambda b: short(b["root"])), ("epoch", lambda b: b["epoch"]), ("quorum", lambda b: b["quorum"]),
            ("signers", lambda b: f"{b['signed']['signers']}/{b['signed']['members']} ({b['signed']['rows_signed']}/"
                                  f"{b['signed']['rows']} rows)" if b.get("signed") else ""),
            ("verified", lambda b: "yes" if b["verified"] else "no"), ("tx", lambda b: short(b["tx"])),
        ], d["blobs"], caption=f"epoch {d['epoch']}, {d['quorums']} quorum(s); {d['blobs_total']} blobs, "
                               f"{d['verified_total']} verified"))
    if _usable(console, "Compute", s.get("compute")):
        c = s["compute"]
        console.print(table("Compute services", [
            ("provider", lambda x: short(x["provider"])), ("model", lambda x: x["model"]), ("url", lambda x: x["url"]),
            ("price in/out", lambda x: f"{x['inputPrice']}/{x['outputPrice']}"), ("active", lambda x: x["active"]),
            ("earnings", lambda x: eth(x["earnings"])),
        ], c["services"]))
        console.print(table("Compute accounts", [
            ("user", lambda a: short(a["user"])), ("provider", lambda a: short(a["provider"])),
            ("ledger", lambda a: eth(a["ledger_available"])), ("sub-account", lambda a: eth(a["balance"])),
            ("charged", lambda a: eth(a["charged"])), ("nonce", lambda a: a["nonce"]),
        ], c["accounts"]))
        console.print(table("Settlements", [
            ("user", lambda x: short(x["user"])), ("nonce", lambda x: x["nonce"]), ("status", lambda x: x["status"]),
            ("paid", lambda x: eth(x["paid"])), ("unpaid", lambda x: eth(x["unpaid"])), ("block", lambda x: x["block"]),
        ], c["settlements"], caption=f"{c['settled_total']} receipts settled, {eth(c['paid_total'])} paid"))
    if _usable(console, "INFTs", s.get("inft")):
        i = s["inft"]
        console.print(table("INFTs", [
            ("token", lambda t: t["tokenId"]), ("owner", lambda t: short(t.get("owner"))),
            ("creator", lambda t: short(t.get("creator"))), ("data", lambda t: short(t.get("dataHash"))),
        ], i["tokens"], caption=f"{i['minted']} minted, {i['transfers']} transfers"))
    if _usable(console, "Market", s.get("market")):
        m = s["market"]
        console.print(table("Market listings", [
            ("id", lambda x: x["id"]), ("token", lambda x: x["token_id"]), ("seller", lambda x: short(x["seller"])),
            ("price", lambda x: eth(x["price"])), ("open", lambda x: x["open"]),
        ], m["listings"]))
        console.print(table("Market purchases", [
            ("id", lambda x: x["id"]), ("token", lambda x: x["token_id"]), ("buyer", lambda x: short(x["buyer"])),
            ("price", lambda x: eth(x["price"])), ("status", lambda x: x["status"]),
        ], m["purchases"]))
    if _usable(console, "Alignment", s.get("alignment")):
        a = s["alignment"]
        console.print(table("Alignment: supervised nodes", [
            ("id", lambda n: n["id"]), ("kind", lambda n: n["kind"]), ("url", lambda n: n["url"]),
            ("flagged", lambda n: "[bold red]yes[/]" if n["flagged"] else "no"), ("failures", lambda n: n["failures"]),
            ("stake", lambda n: eth(n["stake"])),
        ], a["nodes"], caption=f"epoch {a['epoch']} ({'opened' if a['opened'] else 'not opened'}), "
                               f"{a['attestations_total']} attestations, {len(a['flagged'])} flags"
                               + (f", {a['licenses_minted']} licenses" if "licenses_minted" in a else "")))
        if a["flagged"]:
            console.print(table("Flagged nodes", [
                ("node", lambda x: x["node"]), ("epoch", lambda x: x["epoch"]), ("slashed", lambda x: eth(x["slashed"])),
                ("block", lambda x: x["block"]),
            ], a["flagged"]))
