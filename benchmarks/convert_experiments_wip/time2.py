exec(open("/tmp/exp/conv1.py").read().split("    print(\"floor\"")[0])
import amasskit.convert._fit as F
def tm_(f, n=5):
    f(); s=time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-s)/n*1000
import time
with torch.no_grad():
    st = floor_state; beta = fb
    mom = F._moments(fm, beta)
    ev = F.evaluate(fm, beta, st, goal)
    print("moments ms", tm_(lambda: F._moments(fm, beta)))
    print("evaluate ms/frame", tm_(lambda: F.evaluate(fm, beta, st, goal))/64)
    print("linearize pose ms/frame", tm_(lambda: F._linearize(fm, mom, beta, st, ev, shape=False))/64)
    print("linearize shape ms/frame", tm_(lambda: F._linearize(fm, mom, beta, st, ev, shape=True))/64)
    lin = F._linearize(fm, mom, beta, st, ev, shape=False)
    lam = torch.full((64,), 1e-3, dtype=torch.float64)
    print("solve ms/frame", tm_(lambda: F._factor(F._damped(lin.H, lam)))/64)
