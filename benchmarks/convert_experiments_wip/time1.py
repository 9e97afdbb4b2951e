exec(open("/tmp/exp/conv1.py").read().split("    print(\"floor\"")[0])
import time
from amasskit.convert._fit import _normal_equations
beta = fb; rest = fm.rest_vertices(beta); jr = fm.rest_joints(beta)
def tm(f, n=5):
    f(); s=time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-s)/n*1000
with torch.no_grad():
    st = floor_state
    fwd = posed_vertices(fm, rest, jr, st)
    res = fwd.vertices - goal
    print("forward ms/frame", tm(lambda: posed_vertices(fm, rest, jr, st))/64)
    print("normal eq ms/frame", tm(lambda: _normal_equations(fm, fwd, st.rel, res))/64)
    print("pose blend gemm ms/frame", tm(lambda: (st.rel[:,1:]-torch.eye(3)).reshape(64,-1) @ fm.pose_basis)/64)
    W = torch.zeros(len(fm.mask), 55); W.scatter_(1, fm.skin_joint, fm.skin_weight)
    A = torch.randn(64, 55, 12)
    print("dense lbs gemm ms/frame", tm(lambda: W @ A)/64)
    import torch.nn.functional as F
