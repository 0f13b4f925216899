"Train the tiny test model on a fixture dataset: python tests/train_tiny.py DATA_DIR OUT_DIR EPOCHS [CKPT_EVERY_MINUTES [KEY=VALUE...]]"
import ast, sys
from dataclasses import asdict
from hat_nb.config import tiny_config
from hat_nb.config import recipe
from hat_nb.train import train

def tiny_recipe(data_dir, epochs=4, **kw):
    kw = dict(freeze_txt_epochs=1) | kw
    mc, tc = recipe('demo', data_dir=str(data_dir), epochs=epochs, batch_size=4, num_workers=0, lr=1e-3,
                    **{f'model.{k}': v for k, v in asdict(tiny_config()).items()}, **kw)
    return mc, tc

if __name__ == '__main__':
    data, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kw = dict(ckpt_every_minutes=float(sys.argv[4])) if len(sys.argv) > 4 else {}
    kw |= {k: ast.literal_eval(v) for k, v in (a.split('=', 1) for a in sys.argv[5:])}   # recipe keys
    train(*tiny_recipe(data, epochs, **kw), out, progress=False)
