"Process bodies for the distributed tests (spawned with torch.multiprocessing, so they live in an importable module)."
import os
import torch
import torch.distributed as dist

def loss_worker(rank, W, port, cfg, sd, batch, out, kind='vsepp'):
    "One of W gloo processes: its share of the global-batch loss (`HATLoss`, the training loss), backward, DDP-style gradient averaging; rank 0 saves loss and grads."
    from hat_nb.loss import HATLoss
    from hat_nb.model import HATModel
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=W)
    torch.manual_seed(0)
    m = HATModel(cfg).eval(); m.load_state_dict(sd)
    from hat_nb.distributed import shard_rows
    sl = slice(*shard_rows(batch['images'].shape[0], rank, W))      # uneven shares: 58 = 15 + 15 + 14 + 14
    txt, mask = m.encode_texts(batch['input_ids'][sl], batch['attention_mask'][sl])
    loss = HATLoss(kind, mask_same_image=True)(m, m.encode_images(batch['images'][sl]), txt, mask, batch['img_idx'][sl])
    loss.backward()
    grads = torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in m.parameters()])
    dist.all_reduce(grads); grads /= W                                # what DDP does
    l = loss.detach() / W; dist.all_reduce(l)
    if rank == 0: torch.save(dict(loss=l, grads=grads), out)
    dist.destroy_process_group()

def score_worker(rank, W, port, cfg, sd, feats, out):
    "One of W processes scoring its share of the images; a non-zero rank saves the gathered matrix."
    from hat_nb.evaluate import score_all
    from hat_nb.model import HATModel
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=W)
    m = HATModel(cfg).eval(); m.load_state_dict(sd)
    with torch.no_grad(): S = score_all(m, *feats, img_block=2, progress=False)
    if rank == 1: torch.save(S, out)
    dist.destroy_process_group()

def eval_worker(rank, W, port, cfg, sd, recs, out):
    "One of W gloo processes evaluating (`evaluate`, sharded): rank 0 saves the metrics and every rank's count of encoded images."
    from hat_nb.evaluate import evaluate
    from hat_nb.model import HATModel, load_tokenizer
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=W)
    m = HATModel(cfg); m.load_state_dict(sd)
    seen, encode_images = [0], m.encode_images
    def counting(x):
        seen[0] += len(x)
        return encode_images(x)
    m.encode_images = counting
    res = evaluate(m, recs, load_tokenizer(cfg), scoring=('i2t', 't2i'), batch_size=4, progress=False, verbose=False)
    counts = [None] * W
    dist.all_gather_object(counts, seen[0])
    if rank == 0: torch.save(dict(res=res, counts=counts), out)
    dist.destroy_process_group()
