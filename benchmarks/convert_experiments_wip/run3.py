exec(open("/tmp/exp/setup.py").read())
import logging; logging.basicConfig(level=logging.DEBUG, format="%(message)s")
logging.getLogger("amasskit.convert._fit").setLevel(logging.DEBUG)
p,b,t = data[0]
c = Converter.from_folder("smplh", "smplx", model_dir=models, max_iterations=12, tolerance=1e-9)
r = c.convert_poses(p, betas=b, trans=t)
print(r.vertex_error_mean.mean()*1000)
import amasskit.convert._fit as F
F.SHAPE_STRIDE = 1
r = c.convert_poses(p, betas=b, trans=t)
print("stride1", r.vertex_error_mean.mean()*1000)
print("init beta", c.initial_betas(torch.as_tensor(b, dtype=torch.float32)).numpy().round(2))
print("floor beta", np.load("/tmp/exp/floor_betas.npy").round(2))
