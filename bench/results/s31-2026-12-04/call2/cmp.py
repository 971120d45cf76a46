exec(open('/tmp/s31/fit.py').read().split("CUR=(1000")[0])
CUR=(1000,{4:234,2:280,1:280,8:234},'cur','ceil',True)
import sys
NEW=eval(sys.argv[1])
def tf(s,T,fm,kt,c,w):
    vs={(cc,ww):t for (ss,TT,ff,k,cc,ww),t in forced.items() if (ss,TT,ff,k)==(s,T,fm,kt)}
    if (c,w) in vs: return vs[(c,w)]
    return vs.get((min(c,ring_strips(SB[fm])),w)) or vs.get((4,w))
rows=collections.defaultdict(list)
for (s,T,fm,kt,n,m,E) in launches():
    a=statistics.mean(auto[(s,T,fm)])
    c0,w0=pick(n,m,E,kt,SB[fm],CUR); c1,w1=pick(n,m,E,kt,SB[fm],NEW)
    if (c0,w0)!=(c1,w1):
        t0=tf(s,T,fm,kt,c0,w0); t1=tf(s,T,fm,kt,c1,w1)
        rows[(s,T,fm)].append((kt,c0,w0,c1,w1,t1/t0))
allr=[]
for k in sorted(rows):
    tot=1
    for x in rows[k]: tot*=x[5]
    allr.append(tot)
    print(k, ' '.join(f"kt{x[0]} c{x[1]}w{x[2]}->c{x[3]}w{x[4]} {x[5]:.3f}" for x in rows[k]), f"=> {tot:.3f}")
print(len(allr),'changed rows; geo-mean', math.exp(sum(map(math.log,allr))/len(allr)) if allr else 1, 'min',min(allr),'max',max(allr))
