import json, glob, os, sys, collections, statistics
NORM = os.environ.get("NORM") == "1"
d = sys.argv[1]
auto = collections.defaultdict(list)   # (shape,T,fmt) -> [times]
forced = {}                            # (shape,T,fmt,kt,cap,w) -> time
for f in glob.glob(d + '/**/*.json', recursive=True):
    b = os.path.basename(f)[:-5]
    parts = b.split('_')
    rows = json.load(open(f))['rows']
    if parts[1] == 'auto':
        for r in rows: auto[(r['shape'], r['tokens'], r['format'])].append(r['time_us']*(r.get('sm_mhz') or 1965)/1965 if NORM else r['time_us'])
    else:
        kt, cap, w = map(int, parts[1:4])
        for r in rows: forced[(r['shape'], r['tokens'], r['format'], kt, cap, w)] = r['time_us']*(r.get('sm_mhz') or 1965)/1965 if NORM else r['time_us']
print(len(auto), len(forced))
best = {}
for (s, T, fm, kt, cap, w), t in forced.items():
    k = (s, T, fm, kt)
    if k not in best or t < best[k][0]: best[k] = (t, cap, w)
# per row: auto, best per launch, combined estimate
tot_a = tot_b = 0
for (s, T, fm), ts in sorted(auto.items()):
    a = statistics.mean(ts)
    kts = sorted({k[3] for k in best if k[:3] == (s, T, fm)})
    gains = []
    desc = []
    for kt in kts:
        t, cap, w = best[(s, T, fm, kt)]
        gains.append(a - t)
        desc.append(f"kt{kt}:c{cap}w{w} {t/a:5.3f}")
    g = sum(x for x in gains if x > 0)
    tot_a += a; tot_b += a - g
    spread = max(ts) / min(ts)
    print(f"{s:16s} T={T:4d} {fm:10s} auto {a:8.1f} (spread {spread:5.3f})  " + "  ".join(desc) + f"  => {1 - g/a:5.3f}")
print("total", tot_b / tot_a)
