exec(open("/tmp/exp/setup.py").read())
import logging; logging.basicConfig(level=logging.DEBUG, format="%(message)s")
import amasskit.convert._fit as F
orig = F._linearize
def lin(target, moments, betas, state, ev, *, shape):
    out = orig(target, moments, betas, state, ev, shape=shape)
    d = torch.diagonal(out.H, dim1=1, dim2=2)
    d[:, 75:165] *= FACTOR
    return out
F._linearize = lin
p,b,t = data[0]
for FACTOR in [1, 3, 10]:
    c = Converter.from_folder("smplh", "smplx", model_dir=models, max_iterations=8, tolerance=1e-9)
    r = c.convert_poses(p[:16], betas=b, trans=t[:16])
    print(FACTOR, r.vertex_error_mean.mean()*1000)
