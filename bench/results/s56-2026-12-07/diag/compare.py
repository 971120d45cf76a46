import re,sys
def parse(path):
    rows={}; cur=[]
    for l in open(path):
        if l.startswith('diag qmoe'):
            m=re.search(r'(w13|w2 ) grid=\d+ units=(\d+) early=(\d)',l); cur.append({'l':m.group(1).strip(),'early':m.group(3)})
        elif l.startswith('diag   cyc') and cur:
            m=re.search(r'cyc (\S+ ?\S*)\s+min\s+(-?\d+) med\s+(-?\d+)',l); cur[-1][m.group(1).strip()]=int(m.group(3))
        elif re.match(r'^\S+ \S+ T=\d+ ',l) and 'baseline' not in l:
            key=' '.join(l.split()[:3]); rows[key]=(cur[-2:],re.search(r'(\d+\.\d) us',l).group(1)); cur=[]
        elif 'baseline' in l: cur=[]
    return rows
a=parse(sys.argv[1]); b=parse(sys.argv[2])
print("median cycles over blocks with an item (thread 0), gate/up launch (w13); main's loop (s55-diag) vs the warm unit (s56-diag), one H100, same call order")
print(f"{'row':34s} {'layer us':>15s} {'sched->item':>13s} {'item->issued':>13s} {'issued->fill':>13s} {'warm unit':>9s}")
for k in a:
    if k not in b: continue
    (la,ta),(lb,tb)=a[k],b[k]
    wa=[x for x in la if x['l']=='w13']; wb=[x for x in lb if x['l']=='w13']
    if not wa or not wb: continue
    wa,wb=wa[0],wb[0]
    f=lambda n: f"{wa.get(n,-1):>5d}/{wb.get(n,-1):<5d}"
    print(f"{k:34s} {ta:>7s}/{tb:<7s} {f('sched->item'):>13s} {f('item->issued'):>13s} {f('issued->fill'):>13s} {wb.get('warm unit',-1):>9d}")
