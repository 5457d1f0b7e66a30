"""Summaries for bench/server_latency.sh (see there): turns one run's raw
outputs into a JSON line (`run`), prints a run's one-line summary (`line`),
and writes the Markdown report of the quietest run (`report`)."""
import argparse
import json
import os
import platform
import subprocess
import sys


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def stages(stats):
    out = {}
    for s in (stats or {}).get("latency", []):
        out[s["stage"]] = {k: s[k] for k in ("count", "p50_us", "p90_us", "p99_us",
                                             "p999_us", "max_us", "mean_us")}
    return out


def lat(j, keys=("p50_us", "p90_us", "p99_us", "p999_us", "max_us")):
    return {k: (j or {}).get(k) for k in keys}


def peak(j):
    if not j:
        return None
    return {k: j.get(k) for k in ("peak_rate", "slo_p99_us", "p50_us", "p99_us",
                                  "achieved_rate", "client_limited",
                                  "first_failing_rate", "connections", "batch",
                                  "capped_at_max_rate")} | {
        "steps": [{k: st.get(k) for k in ("offered_rate", "achieved_rate", "p50_us",
                                         "p99_us", "send_lag_p99_us", "verdict")}
                  for st in j.get("steps", [])]}


def perf_stat(path):
    """context-switches and task-clock from a `perf stat -o` file."""
    try:
        text = open(path).read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 2 and f[1] in ("context-switches", "cpu-migrations"):
            out[f[1]] = int(f[0].replace(",", ""))
        if len(f) >= 2 and f[1] == "msec" and "task-clock" in line:
            out["task_clock_ms"] = float(f[0].replace(",", ""))
    return out or None


def cmd_run(d, run, date):
    loads = []
    try:
        loads = [float(x) for x in open(os.path.join(d, "loadavg")).read().split()]
    except (OSError, ValueError):
        pass
    eng = load(os.path.join(d, "engine.json"), {})
    floor = load(os.path.join(d, "floor.json"), {})
    floor_eng = load(os.path.join(d, "floor-engine.json"), {})
    minc = load(os.path.join(d, "min-client.json"), {})
    ms = stages(load(os.path.join(d, "min-stats.json")))
    closed = load(os.path.join(d, "closed.json"), {})
    opn = load(os.path.join(d, "open.json"), {})
    cs = stages(load(os.path.join(d, "closed-stats.json")))
    os_ = stages(load(os.path.join(d, "open-stats.json")))
    sizes = load(os.path.join(d, "sizes.json"), {})
    r = {
        "run": run,
        "date": date,
        "load_mean": round(sum(loads) / len(loads), 2) if loads else None,
        "load_min": min(loads) if loads else None,
        "load_max": max(loads) if loads else None,
        "request_bytes": sizes.get("request_bytes"),
        "response_bytes": sizes.get("response_bytes"),
        "engine_bench": lat(eng, ("p50_us", "p99_us", "max_us")),
        "floor": lat(floor) | {"round_trips": floor.get("round_trips")},
        "syscall_ns": floor.get("syscall_ns"),
        "floor_same_cpu": floor.get("same_cpu"),
        "floor_engine": lat(floor_eng) | {"delay_us": floor_eng.get("server_delay_us")},
        "min_client": lat(minc) | {"round_trips": minc.get("round_trips")},
        "min_stages": ms,
        "closed": lat(closed) | {"requests": closed.get("requests"),
                                 "errors": closed.get("errors"),
                                 "rate": closed.get("achieved_rate")},
        "closed_stages": cs,
        "open": lat(opn) | {"rate": opn.get("offered_rate"),
                            "schedule_kept": opn.get("schedule_kept"),
                            "late_sends": opn.get("late_sends"),
                            "requests": opn.get("requests")},
        "open_stages": os_,
        "wake": load(os.path.join(d, "wake.json")),
        "peak_b1": peak(load(os.path.join(d, "peak-b1.json"))),
        "peak_b64": peak(load(os.path.join(d, "peak-b64.json"))),
        "peak_b1_stages": stages(load(os.path.join(d, "peak-b1-stats.json"))),
        "peak_b64_stages": stages(load(os.path.join(d, "peak-b64-stats.json"))),
        "perf": perf_stat(os.path.join(d, "perf-stat.txt")),
    }
    print(json.dumps(r))


def targets(r):
    """The issue's targets for run r: (a) and (b)."""
    sv = r["closed_stages"].get("server", {})
    t = {"a_p50": sv.get("p50_us"), "a_p99": sv.get("p99_us")}
    t["a_ok"] = (t["a_p50"] is not None and t["a_p50"] <= 15 and
                 t["a_p99"] is not None and t["a_p99"] <= 50)
    f, e, c = r["floor"]["p50_us"], r["engine_bench"]["p50_us"], r["closed"]["p50_us"]
    if None in (f, e, c):
        t["b_bound"] = t["b_ok"] = None
    else:
        t["b_bound"] = f + e + 20
        t["b_ok"] = c <= t["b_bound"]
        t["b_rtt"] = c
        t["b_excess"] = c - t["b_bound"]
        # What the round trip spends beyond the floor and the engine.
        t["b_beyond"] = c - f - e
    return t


def fmt(v, nd=1):
    return "-" if v is None else ("%.*f" % (nd, v))


def peak_cell(p):
    if not p or not p.get("peak_rate"):
        return "none met the SLO"
    s = "%.0f req/s" % p["peak_rate"]
    if p.get("client_limited"):
        s += " (client-limited)"
    if p.get("capped_at_max_rate"):
        s += " (capped at --max-rate)"
    return s


def cmd_line(path):
    rows = [json.loads(x) for x in open(path) if x.strip()]
    r = rows[-1]
    t = targets(r)
    sv = r["closed_stages"].get("server", {})
    print("  run %d: load %s | (a) server own p50 %s p99 %s us | (b) rtt p50 %s, "
          "floor %s + engine %s + 20 = %s us | (c) b1 %s, b64 %s" % (
              r["run"], fmt(r["load_mean"], 2), fmt(sv.get("p50_us")),
              fmt(sv.get("p99_us")), fmt(r["closed"]["p50_us"]),
              fmt(r["floor"]["p50_us"]), fmt(r["engine_bench"]["p50_us"]),
              fmt(t["b_bound"]), peak_cell(r["peak_b1"]), peak_cell(r["peak_b64"])))


def machine():
    cpu = "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return cpu, os.cpu_count(), platform.release()


def cmd_report(a):
    rows = [json.loads(x) for x in open(a.file) if x.strip()]
    if not rows:
        sys.exit("server_latency.py: no runs in %s" % a.file)
    q = min(rows, key=lambda r: r["load_mean"] if r["load_mean"] is not None else 1e9)
    t = targets(q)
    cpu, cores, kernel = machine()
    cs, os_ = q["closed_stages"], q["open_stages"]
    model = a.model
    mname = os.path.basename(os.path.dirname(model)) or os.path.basename(model)
    P = print
    P("# microrecd server latency (issue 3)")
    P()
    P("Machine: %s, %d cores, Linux %s; shared with other engineers' builds. "
      "Model: %s (`%s`). Loopback; microrecd with default flags%s." % (
          cpu, cores, kernel, mname, model,
          (" plus `%s`" % a.server_flags) if a.server_flags else ""))
    pin_text = {"none": "not pinned (the scheduler places them)",
                "same": "all on CPU 0 (`PIN=same`)",
                "split": "servers on CPU 0, clients on CPU 1 (`PIN=split`)"}.get(
                    a.pin or "none", a.pin)
    P("Servers and clients of (a) and (b): %s; in the floor run %s of the replies "
      "were written on the client's CPU. (c) is never pinned." % (
          pin_text, "-" if q.get("floor_same_cpu") is None
          else "%.0f%%" % (100 * q["floor_same_cpu"])))
    P("Quietest of %d runs: run %d, ended %s; 1-min load average during the run %s "
      "(min %s, max %s; our own server and client add about 1-2)." % (
          len(rows), q["run"], q["date"], fmt(q["load_mean"], 2),
          fmt(q["load_min"], 2), fmt(q["load_max"], 2)))
    P()
    P("| what | p50 us | p99 us | target | met |")
    P("|---|---:|---:|---|---|")
    sv = cs.get("server", {})
    P("| (a) server's own time (read -> handed to kernel, minus engine), closed loop | "
      "%s | %s | p50 <= 15, p99 <= 50 | %s |" % (
          fmt(sv.get("p50_us")), fmt(sv.get("p99_us")), "yes" if t["a_ok"] else "**no**"))
    so = os_.get("server", {})
    a_open_ok = (so.get("p50_us") is not None and so["p50_us"] <= 15 and
                 so.get("p99_us") is not None and so["p99_us"] <= 50)
    P("| (a) the same, open loop at %s req/s | %s | %s | p50 <= 15, p99 <= 50 | %s |" % (
        fmt(q["open"]["rate"], 0), fmt(so.get("p50_us")), fmt(so.get("p99_us")),
        "yes" if a_open_ok else "**no**"))
    P("| (b) round trip, microrec-load closed loop, 1 in flight | %s | %s | "
      "p50 <= %s (floor + engine + 20) | %s |" % (
          fmt(q["closed"]["p50_us"]), fmt(q["closed"]["p99_us"]), fmt(t["b_bound"]),
          ("yes" if t["b_ok"] else "**no** (+%.1f us)" % t["b_excess"])
          if t["b_ok"] is not None else "-"))
    P("| (b) floor: blocking TCP echo, %s B out / %s B back | %s | %s | | |" % (
        q["request_bytes"], q["response_bytes"], fmt(q["floor"]["p50_us"]),
        fmt(q["floor"]["p99_us"])))
    P("| (b) engine alone, `microrec bench --batch 1` | %s | %s | | |" % (
        fmt(q["engine_bench"]["p50_us"]), fmt(q["engine_bench"]["p99_us"])))
    fe, mc = q.get("floor_engine") or {}, q.get("min_client") or {}
    P("| floor with the echo server spinning %s us (engine p50) per reply | %s | %s | | |" % (
        fmt(fe.get("delay_us")), fmt(fe.get("p50_us")), fmt(fe.get("p99_us"))))
    P("| microrecd round trip with a minimal blocking client (bench/min_client) | %s | %s | "
      "p50 <= %s | %s |" % (
          fmt(mc.get("p50_us")), fmt(mc.get("p99_us")), fmt(t["b_bound"]),
          "-" if mc.get("p50_us") is None or t["b_bound"] is None else
          ("yes" if mc["p50_us"] <= t["b_bound"] else
           "no (+%.1f us)" % (mc["p50_us"] - t["b_bound"]))))
    P()
    P("| (c) peak rate with p99 under the SLO (open loop, %d connections) | SLO p99 | peak | "
      "p50 us | p99 us | server's end_to_end p50 / p99 us over the whole search |" % a.peak_conns)
    P("|---|---:|---|---:|---:|---|")
    for name, p, slo, st in (("batch 1", q["peak_b1"], a.slo_b1, q.get("peak_b1_stages")),
                             ("batch 64", q["peak_b64"], a.slo_b64, q.get("peak_b64_stages"))):
        ok = p and p.get("peak_rate")
        e2e = (st or {}).get("end_to_end", {})
        P("| %s | %s us | %s%s | %s | %s | %s / %s |" % (
            name, slo, peak_cell(p),
            (" = %.0f samples/s" % (p["peak_rate"] * (64 if name == "batch 64" else 1)))
            if ok else "", fmt(p.get("p50_us")) if ok else "-",
            fmt(p.get("p99_us")) if ok else "-", fmt(e2e.get("p50_us")),
            fmt(e2e.get("p99_us"))))
    P()
    for name, p in (("batch 1", q["peak_b1"]), ("batch 64", q["peak_b64"])):
        if p and not p.get("peak_rate") and p.get("steps"):
            P("%s steps tried: %s." % (name.capitalize(), "; ".join(
                "%.0f req/s: p50 %s, p99 %s us, generator's send lag p99 %s us (%s)" % (
                    st["offered_rate"] or 0, fmt(st["p50_us"]), fmt(st["p99_us"]),
                    fmt(st["send_lag_p99_us"]), st["verdict"]) for st in p["steps"])))
            P()
    w = q.get("wake")
    if w:
        P("Noise under these p99s: a thread sleeping %s us on this machine during the run "
          "woke late by p50 %s, p90 %s, p99 %s, max %s us (bench/wake_jitter, %d sleeps); "
          "an open-loop request wakes at least the generator's sender and the server "
          "once each." % (fmt(w.get("sleep_us"), 0), fmt(w.get("p50_us")),
                          fmt(w.get("p90_us")), fmt(w.get("p99_us")),
                          fmt(w.get("max_us")), w.get("count", 0)))
        P()
    P("The server's stages in the closed-loop microrec-load run (its own histograms, "
      "`microrec stats`; they include the 1 s warm-up):")
    P()
    P("| stage | count | p50 us | p90 us | p99 us | p99.9 us | max us |")
    P("|---|---:|---:|---:|---:|---:|---:|")
    for st in ("queue", "engine", "reply", "server", "end_to_end", "write"):
        g = cs.get(st)
        if g:
            P("| %s | %d | %s | %s | %s | %s | %s |" % (
                st, g["count"], fmt(g["p50_us"]), fmt(g["p90_us"]), fmt(g["p99_us"]),
                fmt(g["p999_us"]), fmt(g["max_us"])))
    P()
    F, E = q["floor"]["p50_us"], q["engine_bench"]["p50_us"]
    FE, M, L = fe.get("p50_us"), mc.get("p50_us"), q["closed"]["p50_us"]
    ES = cs.get("engine", {}).get("p50_us")
    if None not in (F, E, FE, M, L, ES):
        P("Where the round trip goes (p50s, us; differences of medians, so approximate):")
        P()
        P("| part | us |")
        P("|---|---:|")
        P("| network floor (echo of the same bytes) | %.1f |" % F)
        P("| engine (`microrec bench`) | %.1f |" % E)
        P("| floor + a %.1f us spin, minus floor: the engine's place in a round trip | %.1f |" % (
            fe.get("delay_us") or 0, FE - F))
        P("| engine as served minus engine in `microrec bench` (caches shared with the "
          "network path and the client) | %.1f |" % (ES - E))
        P("| the server's own time (its `server` stage) | %.1f |" % sv.get("p50_us", 0))
        P("| rest of microrecd with a minimal client: min_client - (floor + engine spin) - "
          "own time - engine slowdown | %.1f |" % (M - FE - sv.get("p50_us", 0) - (ES - E)))
        P("| microrec-load's own cost: its round trip minus min_client's | %.1f |" % (L - M))
        P("| **round trip with microrec-load** | **%.1f** |" % L)
        P()
        sc = q.get("syscall_ns")
        if sc:
            P("One null system call costs %.1f us on this VM (PTI on, PVM hypervisor); "
              "the echo floor makes 2 per side per round trip, microrecd 3 "
              "(epoll_wait, read, write), microrec-load 4 (epoll_wait, recvfrom until "
              "EAGAIN, sendto; counted with strace -c)." % (sc / 1000.0))
            P()
        wr = cs.get("write", {}).get("p50_us")
        P("The `write` stage (%s us p50) is the write call that hands the answer to the "
          "kernel: on loopback it delivers to the client and, the client sharing the "
          "CPU, usually runs the client's turn before it returns; it is part of the "
          "floor, not the server's own time." % fmt(wr))
        if q.get("perf"):
            pf = q["perf"]
            n = cs.get("end_to_end", {}).get("count") or 0
            if n and "context-switches" in pf:
                P()
                P("perf stat on microrecd during the closed loop: %d context switches "
                  "(%.2f per request), %s ms task-clock = %s us of server CPU per "
                  "request (engine and own time included; the rest is the kernel's "
                  "network path, the system calls and the context switches)." % (
                      pf["context-switches"], pf["context-switches"] / n,
                      fmt(pf.get("task_clock_ms"), 0),
                      fmt(pf["task_clock_ms"] * 1000.0 / n) if pf.get("task_clock_ms")
                      else "-"))
        P()
    P("All runs (p50/p99 in us; rtt: microrec-load closed loop; min: min_client):")
    P()
    P("| run | ended (UTC) | load mean | (a) p50 | (a) p99 | (a) open p50/p99 | floor p50 | "
      "engine p50 | rtt p50 | rtt p99 | min p50 | bound | (c) b1 | (c) b64 | 1 ms sleep late p99 |")
    P("|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for r in rows:
        tr = targets(r)
        o = r["open_stages"].get("server", {})
        P("| %d | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["run"], r["date"], fmt(r["load_mean"], 2), fmt(tr["a_p50"]),
            fmt(tr["a_p99"]), fmt(o.get("p50_us")), fmt(o.get("p99_us")),
            fmt(r["floor"]["p50_us"]), fmt(r["engine_bench"]["p50_us"]),
            fmt(r["closed"]["p50_us"]), fmt(r["closed"]["p99_us"]),
            fmt((r.get("min_client") or {}).get("p50_us")), fmt(tr["b_bound"]),
            peak_cell(r["peak_b1"]), peak_cell(r["peak_b64"]),
            fmt((r.get("wake") or {}).get("p99_us"))))
    P()
    P("Commands (per run; each microrecd is fresh, `--listen 127.0.0.1:0`):")
    P()
    P("```")
    b, m, s = a.build, model, a.secs
    P("bench/server_latency.sh %d   # BUILD=%s RUN_SECONDS=%s LOW_RATE=%s SLO_B1_US=%s SLO_B64_US=%s PEAK_CONNECTIONS=%d PIN=%s" % (
        a.runs, b, s, a.low_rate, a.slo_b1, a.slo_b64, a.peak_conns, a.pin or "none"))
    P("%s/bin/microrec bench %s --batch 1 --seconds 3 --warmup 1 --json" % (b, m))
    P("%s/bin/microrecd --model %s --listen 127.0.0.1:0%s" % (
        b, m, (" " + a.server_flags) if a.server_flags else ""))
    P("%s/bench/min_client ADDR   # frame sizes" % b)
    P("%s/bin/microrec-load --server ADDR --connections 1 --concurrency 1 --batch 1 --duration %s --warmup 1 --json" % (b, s))
    P("%s/bin/microrec stats --server ADDR --json" % b)
    P("%s/bench/echo_floor --request-bytes %s --response-bytes %s --seconds %s --warmup 1 --json" % (
        b, q["request_bytes"], q["response_bytes"], s))
    P("%s/bench/echo_floor --request-bytes %s --response-bytes %s --seconds %s --warmup 1 --server-delay-us ENGINE_P50 --json" % (
        b, q["request_bytes"], q["response_bytes"], s))
    P("%s/bench/min_client ADDR --seconds %s --warmup 1   # fresh server" % (b, s))
    P("%s/bin/microrec-load --server ADDR --connections 1 --rate %s --batch 1 --duration %s --warmup 1 --json   # fresh server" % (b, a.low_rate, s))
    P("%s/bench/wake_jitter --sleep-us 1000 --count 2000 --json" % b)
    P("%s/bin/microrec-load --server ADDR --connections %d --batch 1 --find-peak --slo-p99-us %s --start-rate 250 --step-duration 2 --step-warmup 0.5 --json   # fresh server" % (b, a.peak_conns, a.slo_b1))
    P("%s/bin/microrec-load --server ADDR --connections %d --batch 64 --find-peak --slo-p99-us %s --start-rate 25 --step-duration 2 --step-warmup 0.5 --json   # fresh server" % (b, a.peak_conns, a.slo_b64))
    P("```")
    P()
    P("Raw per-run data: %s." % a.file)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: server_latency.py run DIR RUN DATE | line FILE | report FILE ...")
    cmd = sys.argv[1]
    if cmd == "run":
        cmd_run(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "line":
        cmd_line(sys.argv[2])
    elif cmd == "report":
        p = argparse.ArgumentParser()
        p.add_argument("file")
        for k in ("--model", "--build", "--secs", "--low-rate", "--slo-b1",
                  "--slo-b64", "--server-flags", "--pin"):
            p.add_argument(k, default="")
        p.add_argument("--runs", type=int, default=1)
        p.add_argument("--peak-conns", type=int, default=4)
        cmd_report(p.parse_args(sys.argv[2:]))
    else:
        sys.exit("server_latency.py: unknown command %s" % cmd)


if __name__ == "__main__":
    main()
