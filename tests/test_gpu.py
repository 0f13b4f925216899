"GPU path (skipped without CUDA): bf16 scoring against fp32, one AMP training step of the tiny model."
import pytest, torch
from hat_nb.align import scan_scores

pytestmark = pytest.mark.gpu

def test_bf16_scores_close_to_fp32_on_gpu():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(64, 196, 768, generator=g).cuda(), torch.randn(300, 32, 768, generator=g).cuda()
    mask = (torch.arange(32)[None] < torch.randint(4, 33, (300,), generator=g)[:, None]).cuda()
    for d in ('i2t', 't2i'):
        ref = scan_scores(img, txt, mask, d)
        with torch.autocast('cuda', dtype=torch.bfloat16): got = scan_scores(img, txt, mask, d, max_elems=2**22)
        assert got.dtype == torch.float32 and (got - ref).abs().max() < 2e-2

def test_amp_training_step_on_gpu():
    from hat_nb.config import tiny_config
    from hat_nb.model import HATModel
    from hat_nb.loss import vsepp_loss
    m = HATModel(tiny_config()).cuda()
    x, ids = torch.randn(8, 3, 32, 32, device='cuda'), torch.randint(1000, 2000, (8, 16), device='cuda')
    with torch.autocast('cuda', dtype=torch.bfloat16): loss = vsepp_loss(m(x, ids, torch.ones_like(ids, dtype=torch.bool)).float())
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in m.img_proj.parameters())
