exec(open("/tmp/exp/setup.py").read())
import logging, dataclasses; logging.basicConfig(level=logging.DEBUG, format="%(message)s")
import amasskit.convert._fit as F
F.SHAPE_STRIDE = 1
orig_mom = F._moments
def moments_rest(target, rest):
    f64 = torch.float64
    rest = rest.to(f64); V = rest.shape[0]; S = target.num_betas
    ones = torch.ones(V, 1, dtype=f64)
    x = torch.cat([rest, ones], 1)
    Sv = target.shape_basis[:S].reshape(S, V, 3).permute(1, 0, 2).to(f64)
    Sh = torch.cat([Sv, ones[:, None].expand(V, S, 1)], 2)
    xx = (x[:, :, None] * x[:, None, :]).reshape(V, 16)
    xs = (x[:, None, :, None] * Sh[:, :, None, :]).reshape(V, S * 16)
    P = target.pairs.shape[0]
    M = torch.zeros(P, 16, dtype=f64); T = torch.zeros(P, S * 16, dtype=f64)
    w = target.skin_weight.to(f64); K = w.shape[1]
    for a in range(K):
        for b_ in range(K):
            ww = (w[:, a] * w[:, b_])[:, None]
            M.index_add_(0, target.pair_of_slots[:, a, b_], ww * xx)
            T.index_add_(0, target.pair_of_slots[:, a, b_], ww * xs)
    W = target.weights.to(f64)
    return F._Moments(M.reshape(P, 4, 4), T.reshape(P, S, 4, 4), W.T @ x, torch.einsum("vj,vsc->jsc", W, Sh))
orig_lin = F._linearize
def lin(target, moments, betas, state, ev, *, shape):
    outs = []
    for i in range(state.rel.shape[0]):
        m = moments_rest(target, ev.rest[i])
        sub = F.Evaluation(*(getattr(ev, f)[i:i+1] for f in F.Evaluation.__dataclass_fields__))
        outs.append(orig_lin(target, m, betas, state.take(torch.tensor([i])), sub, shape=shape))
    return F._Linear(*(torch.cat([getattr(o, f) for o in outs]) for f in ("H","g","C","Hss","h")))
F._linearize = lin

import amasskit.convert._fit as F
F.SHAPE_STRIDE = 1
p,b,t = data[0]
c = Converter.from_folder("smplh", "smplx", model_dir=models, max_iterations=4, tolerance=1e-9)
# capture the state after 4 iterations by monkeypatching fit
captured = {}
orig = F._fit_shared
def cap(target, betas, goals, states, **kw):
    out = orig(target, betas, goals, states, **kw)
    captured.update(beta=out[0], goals=goals, states=states)
    return out
import amasskit.convert._converter as CC
CC.fit = lambda tm, beta, goals, states, fit_shape, max_iterations, tolerance: cap(tm, beta, goals, states, max_iterations=max_iterations, tolerance=tolerance)
r = c.convert_poses(p[:16], betas=b, trans=t[:16])
tm = c.fit_model; beta = captured["beta"]; goal = captured["goals"][0]; st = captured["states"][0]
mom = F._moments(tm, beta)
ev = F.evaluate(tm, beta, st, goal)
lin = F._linearize(tm, mom, beta, st, ev, shape=True)
n = lin.H.shape[1]; B = 16; f64=torch.float64
H = F._damped(lin.H, torch.full((16,), 1e-9, dtype=torch.float64)); C = lin.C; g = lin.g; h=lin.h; Hss = lin.Hss
sol = torch.linalg.solve(H, torch.cat([g[..., None], C], -1))
red = (Hss - C.transpose(1,2) @ sol[..., 1:]).sum(0); rhs = (h - (C.transpose(1,2)@sol[..., :1]).squeeze(-1)).sum(0)
ev_ = torch.linalg.eigvalsh(red); print("reduced eig", ev_.min().item(), ev_.max().item(), "Hss eig", torch.linalg.eigvalsh(Hss.sum(0)).min().item())
db = -torch.linalg.solve(red, rhs)
print("cost now", ev.cost.sum().item())
for scale in [0, 0.25, 0.5, 1.0]:
    d = db*scale
    step = -(sol[..., 0] + sol[..., 1:] @ d)
    cand = F._apply_step(st, ev.glob, step, tm.model.parents)
    e2 = F.evaluate(tm, beta + d.float(), cand, goal)
    # predicted
    full = torch.cat([step, d[None].expand(B, -1)], 1)
    print(scale, "actual", e2.cost.sum().item(), "beta-only (poses' step w/o dbeta response)")
# pose-only steps
step = -sol[..., 0]; cand = F._apply_step(st, ev.glob, step, tm.model.parents)
print("pose only (dbeta=0)", F.evaluate(tm, beta, cand, goal).cost.sum().item())
# beta-only, poses fixed: exact linear solve
for scale in [0.25, 1.0]:
    print("beta only", scale, F.evaluate(tm, beta + (scale*db).float(), st, goal).cost.sum().item())
stepn = (-sol[..., 0])[:, :165].reshape(16, 55, 3).norm(dim=-1)
print("max step per joint", stepn.amax(0).numpy().round(3))
print("frames cost now", ev.cost.numpy().round(2))
print("frames cost after pose-only", F.evaluate(tm, beta, cand, goal).cost.numpy().round(2))
