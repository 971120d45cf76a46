import json,glob,collections,statistics,math,itertools,sys
SH={'mixtral-8x7b':(4096,14336,8,2),'deepseek-v2-lite':(2048,1408,64,6),'qwen3-30b-a3b':(2048,768,128,8),'olmoe':(2048,1024,64,8),'deepseek-v3':(7168,2048,256,8)}
SB={'int4:g128':1072,'int3:g128':816,'int8:g128':2096,'int2:g128':560}
data=collections.defaultdict(lambda: collections.defaultdict(list))  # (shape,kt,T,fmt) -> v -> times
for f in glob.glob('/tmp/s31/v6/v/*.json'):
    shape,kt,v,rnd=f.split('/')[-1][:-5].rsplit('_',3)
    for r in json.load(open(f))['rows']: data[(shape,int(kt),r['tokens'],r['format'])][v].append(r['time_us'])
for f in glob.glob('/tmp/s31/v5/v/*.json'):
    shape,v,rnd=f.split('/')[-1][:-5].rsplit('_',2)
    kt=(SH[shape][1]+127)//128
    for r in json.load(open(f))['rows']: data[(shape,kt,r['tokens'],r['format'])][v].append(r['time_us'])
med={k:{v:statistics.median(ts) for v,ts in d.items()} for k,d in data.items()}
def ring_strips(sb):
    q=9728//(2*sb); return 8 if q>=8 else 4 if q>=4 else 2 if q>=2 else 1
def mtw(kt):
    w=8
    while w>1 and kt<8*w: w//=2
    return w
G=264;S=132
def pick(shape,kt,T,fm,P):
    C,t1,t2,beta,wopt,half=P
    H,I,E,k=SH[shape]; m=T*k; n=2*I if kt==(H+127)//128 else H
    ns=(n+15)//16; act=min(m,E); sb=SB[fm]; mw=mtw(kt)
    ea=E*-math.expm1(m*math.log1p(-1.0/E))
    ws=[mw]+([2*mw] if 2*mw<=8 and 2*mw<=kt else [])
    if wopt>=4 and 4*mw<=8 and 4*mw<=kt: ws.append(4*mw)
    if half and mw>1 and math.ceil(kt/(mw//2))<=16: ws=[mw//2]+ws
    best=None
    for w in ws:
        for cap in (4,2,1):   # 8 not measured here
            r=min(ring_strips(sb),cap); ig=math.ceil(ns/(r*(8//w))); items=act*ig
            if w<mw:
                if not (0.75*G<=items<=G and 0.75*G<=ea*ig): continue
            run=math.ceil(kt/w); tc={4:234,2:t2,1:t1}[r]
            full=items//G; rem=items-full*G
            rounds=full*beta+(beta if rem>S else (1 if rem>0 else 0)) if beta!=0 else math.ceil(items/G)
            cost=rounds*(C+run*r*tc)
            if best is None or cost<best[0]-1e-9: best=(cost,cap,w)
    c,w=best[1],best[2]
    c=min(c,ring_strips(sb)) if c!=4 else 4
    return c,w
def tfor(key,c,w):
    d=med[key]
    for cc in (c,4 if c==2 and ring_strips(SB[key[3]])==2 else c):
        if f"{cc}-{w}" in d: return d[f"{cc}-{w}"]
    return None
CUR=(1000,280,280,0,2,True)
def evaluate(P,verbose=False,only=None):
    logs=[];worst=[];miss=0
    for key in med:
        if only and not only(key): continue
        c0,w0=pick(*key,CUR); c1,w1=pick(*key,P)
        a=tfor(key,c0,w0) or med[key]['auto']
        b=tfor(key,c1,w1)
        if b is None: miss+=1; continue
        logs.append(math.log(b/a)); worst.append((b/a,key,(c0,w0),(c1,w1)))
    worst.sort()
    if verbose:
        for x in worst[:8]+worst[-8:]: print('   ',x)
    return math.exp(sum(logs)/len(logs)), worst[0][0], worst[-1][0], miss, len(logs)
print('current vs auto sanity:', evaluate(CUR))
res=[]
for C in (1000,2000,3000,4000,6000):
  for t1 in (280,320,360,420):
    for t2 in (250,280,320):
      for beta in (0,1.3,1.5,1.7,2.0):
        for wopt in (2,4):
          P=(C,t1,t2,beta,wopt,True)
          g,lo,hi,miss,n=evaluate(P)
          res.append((g,hi,P,miss,n))
res.sort()
for r in res[:10]: print(r)
print('best with max<=1.03:')
for r in [x for x in res if x[1]<=1.03][:8]: print(r)
