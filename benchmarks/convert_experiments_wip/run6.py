exec(open("/tmp/exp/setup.py").read())
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
