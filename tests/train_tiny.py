"Train the tiny test model on a fixture dataset: python tests/train_tiny.py DATA_DIR OUT_DIR EPOCHS"
import sys
from dataclasses import asdict
from hat_nb.model import tiny_config
from hat_nb.train import recipe, train

def tiny_recipe(data_dir, epochs=4):
    mc, tc = recipe('demo', data_dir=str(data_dir), epochs=epochs, batch_size=4, num_workers=0, lr=1e-3, freeze_txt_epochs=1,
                    **{f'model.{k}': v for k, v in asdict(tiny_config()).items()})
    return mc, tc

if __name__ == '__main__':
    data, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    train(*tiny_recipe(data, epochs), out, progress=False)
