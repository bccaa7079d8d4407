"""Summarises bench/gateway.sh's raw rows into bench/results/gateway.json and markdown tables."""
import json
import statistics
import sys

rows_path, streams_path, out_path, threads, secs, rounds = sys.argv[1:7]
rows = [json.loads(line) for line in open(rows_path) if line.strip()]
streams = [json.loads(line) for line in open(streams_path) if line.strip()]


def med(values):
    return statistics.median(values) if values else float("nan")


summary = {"overhead": {}, "streams": streams}
targets = ["direct", "nginx", "tinyroute"]
for conns in (1, 64):
    by_round = {}
    for r in rows:
        if r["connections"] == conns:
            by_round.setdefault(r["round"], {})[r["target"]] = r["wrk"]
    for t in targets:
        runs = [rr[t] for rr in by_round.values() if t in rr]
        added50 = [rr[t]["p50_us"] - rr["direct"]["p50_us"] for rr in by_round.values() if t in rr and "direct" in rr]
        added99 = [rr[t]["p99_us"] - rr["direct"]["p99_us"] for rr in by_round.values() if t in rr and "direct" in rr]
        summary["overhead"].setdefault(str(conns), {})[t] = {
            "runs": len(runs),
            "rps": med([w["requests"] / (w["duration_us"] / 1e6) for w in runs]),
            "p50_ms": med([w["p50_us"] / 1000 for w in runs]),
            "p99_ms": med([w["p99_us"] / 1000 for w in runs]),
            "added_p50_ms": med([a / 1000 for a in added50]),
            "added_p99_ms": med([a / 1000 for a in added99]),
            "errors": sum(w["socket_errors"] + w["non2xx"] for w in runs),
        }

o = summary["overhead"]
ratio = o["64"]["tinyroute"]["rps"] / o["64"]["nginx"]["rps"]
summary["tinyroute_vs_nginx_rps"] = ratio
json.dump(summary, open(out_path, "w"), indent=2)

print(f"\n### Gateway overhead: passthrough to a fast local backend (wrk, {rounds} interleaved rounds of {secs}s, medians)\n")
print("| path | 1 conn p50 ms | 1 conn p99 ms | added p50 ms | added p99 ms | 64 conns req/s | 64 conns p99 ms | errors |")
print("|---|---|---|---|---|---|---|---|")
for t in targets:
    a, b = o["1"][t], o["64"][t]
    added50 = "-" if t == "direct" else f"{a['added_p50_ms']:.3f}"
    added99 = "-" if t == "direct" else f"{a['added_p99_ms']:.3f}"
    print(f"| {t} | {a['p50_ms']:.3f} | {a['p99_ms']:.3f} | {added50} | {added99} | {b['rps']:.0f} | {b['p99_ms']:.2f} | {a['errors'] + b['errors']} |")
print(f"\ntinyroute / nginx maximum requests/s (64 connections): **{ratio:.2f}**")

print(f"\n### Concurrent streaming connections (each stream: 20 SSE chunks, 500 ms apart)\n")
print("| proxy | streams requested | held at once | completed | failed | RSS idle MiB | RSS while all held MiB | open fds while held |")
print("|---|---|---|---|---|---|---|---|")
for s in streams:
    c = s["client"]
    held_rss = "-" if s["held_rss_kib"] is None else f"{s['held_rss_kib'] / 1024:.1f}"
    print(f"| {s['target']} | {c.get('requested', '-')} | {c.get('max_held', c.get('open', '-'))} | {c.get('completed', c.get('done', '-'))} | "
          f"{c.get('failed', '-')} | {s['idle_rss_kib'] / 1024:.1f} | {held_rss} | {s['fds_while_held'] if s['fds_while_held'] is not None else '-'} |")
