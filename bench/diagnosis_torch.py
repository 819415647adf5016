"""diagnosis_torch.py - the PyTorch CPU peer of lepton-diagnosis on PneumoniaMNIST: the same CNN
(conv32-bn-relu, maxpool, conv64-bn-relu, maxpool, fc128-relu, fc2), AdamW lr 2e-3 wd 1e-4, cosine
schedule, batch 64, the same epochs, 2 threads; best validation epoch kept; prints one JSON line
with test accuracy, AUROC, ECE (15 bins, no calibration), training seconds (wall) and training
CPU seconds (this process, all threads).  usage: diagnosis_torch.py DATA_DIR EPOCHS [SEED=42]"""
import json, sys, time
import numpy as np
import torch
from sklearn.metrics import roc_auc_score

torch.set_num_threads(2)
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42
torch.manual_seed(seed)


def idx(path):
    raw = open(path, "rb").read()
    if raw[3] == 3:
        n, h, w = np.frombuffer(raw[4:16], ">u4")
        return np.frombuffer(raw[16:], np.uint8).reshape(n, 1, h, w).astype(np.float32) / 255
    return np.frombuffer(raw[8:], np.uint8).astype(np.int64)


d, epochs = sys.argv[1], int(sys.argv[2])
X, y = idx(f"{d}/train-images-idx3-ubyte"), idx(f"{d}/train-labels-idx1-ubyte")
Xv, yv = idx(f"{d}/val-images-idx3-ubyte"), idx(f"{d}/val-labels-idx1-ubyte")
Xt, yt = idx(f"{d}/test-images-idx3-ubyte"), idx(f"{d}/test-labels-idx1-ubyte")
nn = torch.nn
net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 2))
opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
steps = epochs * ((len(X) + 63) // 64)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
Xt_, Xv_ = torch.tensor(Xt), torch.tensor(Xv)
best, best_state = 1e9, None
t0, c0 = time.time(), time.process_time()
for e in range(epochs):
    net.train()
    perm = np.random.RandomState(seed * 1000 + e).permutation(len(X))
    for i in range(0, len(X), 64):
        b = perm[i:i + 64]
        loss = nn.functional.cross_entropy(net(torch.tensor(X[b])), torch.tensor(y[b]))
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    net.eval()
    with torch.no_grad():
        vl = nn.functional.cross_entropy(net(Xv_), torch.tensor(yv)).item()
    if vl < best:
        best, best_state = vl, {k: v.clone() for k, v in net.state_dict().items()}
secs, cpu = time.time() - t0, time.process_time() - c0
net.load_state_dict(best_state)
net.eval()
with torch.no_grad():
    p = torch.softmax(net(Xt_), 1).numpy()
conf, pred = p.max(1), p.argmax(1)
bins = np.minimum((conf * 15).astype(int), 14)
ece = sum(abs((pred[bins == b] == yt[bins == b]).mean() - conf[bins == b].mean()) * (bins == b).mean()
          for b in range(15) if (bins == b).any())
print(json.dumps({"tool": "pytorch-cpu", "seed": seed, "epochs": epochs,
                  "train_seconds": round(secs, 1), "train_cpu_seconds": round(cpu, 1),
                  "accuracy": float((pred == yt).mean()),
                  "auroc": float(roc_auc_score(yt, p[:, 1])), "ece": float(ece)}))
