import dataclasses, numpy as np, torch
from pathlib import Path
from amasskit.body import BodyModel
import amasskit.convert._fit as F
torch.manual_seed(0)
tgt = BodyModel.load("smplx", "neutral", model_dir=Path("/tmp/models"), dtype=torch.float64, dmpl=False)
tm = F.TargetModel.build(tgt, num_betas=16)
B, J = 2, tgt.num_joints
rng = np.random.default_rng(0)
from amasskit.rotations import rotvec_to_rotmat
rel = rotvec_to_rotmat(torch.as_tensor(rng.normal(0,0.4,(B,J,3))))
trans = torch.as_tensor(rng.normal(0,0.5,(B,3)))
beta = torch.as_tensor(rng.normal(0,1,16))
goal = F.evaluate(tm, beta, F.FitState(rel.clone(), trans.clone())).vertices + torch.as_tensor(rng.normal(0, 0.01, (B, len(tm.mask), 3)))
def check(tm, tag, stride_one=False):
    if stride_one: F.SHAPE_STRIDE = 1
    st = F.FitState(rel.clone(), trans.clone())
    ev = F.evaluate(tm, beta, st, goal)
    mom = F._moments(tm, beta)
    lin = F._linearize(tm, mom, beta, st, ev, shape=True)
    n = 3*J+3
    # numeric jacobian of residuals wrt [delta, t, beta] for frame 0
    eps = 1e-6
    cols = []
    for k in range(n + 16):
        stp = torch.zeros(B, n, dtype=torch.float64); b2 = beta.clone()
        if k < n: stp[:, k] = eps
        else: b2[k-n] += eps
        cp = F._apply_step(st, ev.glob, stp, tm.model.parents)
        rp = F.evaluate(tm, b2, cp, goal).residual
        stm = -stp; b3 = beta.clone()
        if k >= n: b3[k-n] -= eps
        cm = F._apply_step(st, ev.glob, stm, tm.model.parents)
        rm = F.evaluate(tm, b3, cm, goal).residual
        cols.append(((rp-rm)/(2*eps)).reshape(B,-1))
    Jn = torch.stack(cols, -1)  # (B, 3V, n+16)
    r = ev.residual.reshape(B, -1)
    gn = (Jn.transpose(1,2) @ r[..., None]).squeeze(-1)
    print(tag, "grad rel err", ((gn[:, :n]-lin.g).norm()/gn[:, :n].norm()).item(), "h", ((gn[:, n:]-lin.h).norm()/gn[:, n:].norm()).item())
    Hn = Jn.transpose(1,2) @ Jn
    print(tag, "H rel err", ((Hn[:, :n,:n]-lin.H.double()).norm()/Hn[:, :n,:n].norm()).item(),
          "C", ((Hn[:, :n, n:]-lin.C).norm()/Hn[:, :n,n:].norm()).item(),
          "Hss", ((Hn[:, n:, n:]-lin.Hss).norm()/Hn[:, n:,n:].norm()).item())
check(tm, "with blends")
tz = dataclasses.replace(tm, pose_basis=torch.zeros_like(tm.pose_basis), pose_gram=torch.zeros_like(tm.pose_gram))
check(tz, "no blends", stride_one=True)
