"""Made tests/data/eegdm_2block_*: run the reference EEGDM denoiser (jhpuah/EEGDM @ 976a5f4, model/ unmodified) once and save a
golden state dict + input/output pair for brainfm's tests."""
# usage: python eegdm_make_golden.py OUT_DIR, with the reference checkout (its model/ folder)
# and einops on PYTHONPATH
import sys
import torch
from model.diffusion_model import Wavenet
out = sys.argv[1]
torch.manual_seed(0)
kw = dict(in_channels=1, d_model=16, d_state=16, n_layer=2, n_ssm=None, kernel_init="diag-lin",
          kernel_mode="diag", bidirectional=True, d_cond=32, d_cond_embed=16, local_cond_ch=0,
          n_class=22, have_null_class=False, self_gated=False)
m = Wavenet(**kw)
# the zero-initialised output and conditioning layers would make the pair trivial: give every
# parameter a random perturbation so the golden output exercises every weight
with torch.no_grad():
    for name, p in m.named_parameters():
        if "kernel" in name or name.endswith(".D"):
            continue  # keep A/B/dt/C/D as the reference initialises them
        p.add_(0.3 * torch.randn_like(p))
m.eval()
x = torch.randn(3, 1, 250)  # (B, 1, L)
steps = torch.tensor([[0], [17], [49]])
label = torch.tensor([[0], [5], [21]])
with torch.no_grad():
    y = m(x, steps, label)
    # also the published size's parameter count
    big = Wavenet(**{**kw, "d_model": 128, "d_state": 128, "n_layer": 20, "d_cond": 512,
                     "d_cond_embed": 128})
n_big = sum(p.numel() for p in big.parameters())
torch.save({k: v.clone() for k, v in m.state_dict().items()}, f"{out}/eegdm_2block_state_dict.pth")
torch.save({"x": x, "steps": steps, "channel_index": label, "y": y, "config": kw,
            "published_n_params": torch.tensor(n_big)}, f"{out}/eegdm_2block_io.pt")
print("saved", y.shape, float(y.abs().mean()), n_big)
