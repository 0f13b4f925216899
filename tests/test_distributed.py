"Several processes (gloo, CPU) against one: the global-batch losses and gradients, and sharded all-pairs scoring."
import socket
import pytest, torch
import torch.multiprocessing as mp
from dist_workers import eval_worker, loss_worker, score_worker
from hat_nb.evaluate import score_all
from hat_nb.loss import infonce_loss, vsepp_loss
from hat_nb.config import tiny_config
from hat_nb.model import HATModel, load_tokenizer

pytestmark = pytest.mark.slow

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture(scope='session')   # (session: the slow-first order splits a module's tests)
def setup():
    torch.manual_seed(0)
    cfg = tiny_config()
    m = HATModel(cfg).eval()
    tok = load_tokenizer(cfg)
    caps = ['a red car', 'a dog', 'two cats on a sofa', 'a red car again', 'sky', 'blue sea and sand', 'a dog', 'face']
    t = tok(caps, padding='max_length', max_length=cfg.max_len, return_tensors='pt')
    batch = dict(images=torch.randn(8, 3, 32, 32), input_ids=t['input_ids'], attention_mask=t['attention_mask'].bool(),
                 img_idx=torch.tensor([0, 1, 2, 0, 3, 4, 1, 5]))
    return cfg, m, batch

@pytest.mark.parametrize('kind', ['vsepp', 'infonce'])
def test_two_processes_equal_one(setup, tmp_path, kind):
    "Each of 2 processes holds half of an 8-pair batch: the summed losses and the DDP-averaged gradients equal one process's."
    cfg, m, batch = setup
    single = (lambda S: vsepp_loss(S, img_ids=batch['img_idx'])) if kind == 'vsepp' else (lambda S: infonce_loss(S, 0.05, batch['img_idx']))
    m.zero_grad()
    txt, mask = m.encode_texts(batch['input_ids'], batch['attention_mask'])
    ref = single(m.similarity(m.encode_images(batch['images']), txt, mask))
    ref.backward()
    ref_g = torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in m.parameters()])
    out = tmp_path/'r.pt'
    mp.start_processes(loss_worker, args=(2, free_port(), cfg, m.state_dict(), batch, out, kind), nprocs=2, join=True, start_method='spawn')
    r = torch.load(out)
    torch.testing.assert_close(r['loss'], ref.detach(), rtol=0, atol=1e-4)
    torch.testing.assert_close(r['grads'], ref_g, rtol=1e-3, atol=5e-5)          # fp32 sums in another order

def test_four_processes_at_the_paper_batch(tmp_path):
    "The paper's global batch of 58 over 4 processes (15 + 15 + 14 + 14 pairs): the loss and the DDP-averaged gradients equal one process's."
    torch.manual_seed(1)
    cfg = tiny_config()
    m = HATModel(cfg).eval()
    t = load_tokenizer(cfg)([f'a picture number {i // 2} seen {i % 2} times' for i in range(58)], padding='max_length',
                            max_length=cfg.max_len, return_tensors='pt')
    batch = dict(images=torch.randn(58, 3, 32, 32), input_ids=t['input_ids'], attention_mask=t['attention_mask'].bool(),
                 img_idx=torch.arange(58) // 2)
    txt, mask = m.encode_texts(batch['input_ids'], batch['attention_mask'])
    ref = vsepp_loss(m.similarity(m.encode_images(batch['images']), txt, mask), img_ids=batch['img_idx'])
    ref.backward()
    ref_g = torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in m.parameters()])
    out = tmp_path/'r.pt'
    mp.start_processes(loss_worker, args=(4, free_port(), cfg, m.state_dict(), batch, out, 'vsepp'), nprocs=4, join=True, start_method='spawn')
    r = torch.load(out)
    torch.testing.assert_close(r['loss'], ref.detach(), rtol=0, atol=1e-4)
    torch.testing.assert_close(r['grads'], ref_g, rtol=1e-3, atol=5e-5)

def test_sharded_scoring_equals_one_process(setup, tmp_path):
    "Under 2 processes each scores its share of the images; the gathered matrix equals one process's (scores, not ranks: near-ties of a random model may flip ranks)."
    cfg, m, batch = setup
    with torch.no_grad():
        feats = (m.encode_images(torch.randn(7, 3, 32, 32)), *m.encode_texts(batch['input_ids'], batch['attention_mask']))
        ref = score_all(m, *feats, progress=False)
    out = tmp_path/'S.pt'
    mp.start_processes(score_worker, args=(2, free_port(), cfg, m.state_dict(), feats, out), nprocs=2, join=True, start_method='spawn')
    S2 = torch.load(out)
    assert S2.shape == (7, 8)
    torch.testing.assert_close(S2, ref, rtol=0, atol=1e-6)

def test_evaluation_shared_among_processes(tmp_path):
    """`evaluate` under 2 processes (as validation runs under torchrun): each encodes only its share of the 9 images (5 and
    4, plus two blank images: the memory plan's and the buffers' probes of the token counts), and the metrics equal one
    process's."""
    from hat_nb.data import make_fixture, read_karpathy
    from hat_nb.evaluate import evaluate
    torch.manual_seed(0)
    cfg = tiny_config()
    m = HATModel(cfg)
    recs = read_karpathy(make_fixture(tmp_path/'data', 'flickr', n=9)/'dataset_flickr.json')
    ref = evaluate(m, recs, load_tokenizer(cfg), scoring=('i2t', 't2i'), batch_size=4, progress=False, verbose=False)
    out = tmp_path/'e.pt'
    mp.start_processes(eval_worker, args=(2, free_port(), cfg, m.state_dict(), recs, out), nprocs=2, join=True, start_method='spawn')
    r = torch.load(out, weights_only=False)
    assert r['counts'] == [5 + 2, 4 + 2], r['counts']
    assert r['res'] == ref, (r['res'], ref)
