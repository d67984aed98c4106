"""The PyTorch peers of flowtensor's two LSTMs, trained the same way, for `npm run bench peers`.

Usage: /usr/bin/python3 bench/torch_lstm.py MODEL THREADS [SECONDS] [train|predict]
MODEL: seed (each flow's F = 62 features as 62 steps of one value, Linear(1 -> 32) per step, LSTM(32),
Linear(32 -> 15), softmax) or window (8 flows x 62 features -> LSTM(32) -> Linear(32 -> 15)).
Batch 256, RMSprop(lr 0.003), class-weighted cross-entropy, as `flowtensor train` defaults (batch
size aside). Input: random standard-normal features and uniform labels held in memory, so the time is
the training step alone (flowtensor's figure also includes reading and shuffling its shards).
THREADS caps intra-op threads (torch.set_num_threads, and OMP/OpenBLAS through the environment the
caller sets). Prints one JSON line: samples/s over the timed steps, CPU seconds of the process, peak RSS.
With `predict`: the batched forward pass alone (torch.inference_mode, batch 1,024 as flowtensor's predict
calls its model, softmax included), flows/s and flows per CPU-second.
"""
import json
import resource
import sys
import time

import torch
from torch import nn

F, W, H, C, P, B = 62, 8, 32, 15, 32, 256


class Seed(nn.Module):
    def __init__(self):
        super().__init__()
        self.project = nn.Linear(1, P)
        self.lstm = nn.LSTM(P, H, batch_first=True)
        self.out = nn.Linear(H, C)

    def forward(self, x):  # x [B, F]
        _, (h, _) = self.lstm(self.project(x.unsqueeze(-1)))
        return self.out(h[-1])


class Window(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(F, H, batch_first=True)
        self.out = nn.Linear(H, C)

    def forward(self, x):  # x [B, W, F]
        _, (h, _) = self.lstm(x)
        return self.out(h[-1])


def main():
    kind, threads = sys.argv[1], int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 4.0
    mode = sys.argv[4] if len(sys.argv) > 4 else "train"
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = Seed() if kind == "seed" else Window()
    if mode == "predict":
        return predict(kind, model, threads, seconds)
    opt = torch.optim.RMSprop(model.parameters(), lr=0.003, alpha=0.9, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss(weight=torch.rand(C) + 0.5)
    shape = (B, F) if kind == "seed" else (B, W, F)
    batches = [(torch.randn(shape), torch.randint(0, C, (B,))) for _ in range(8)]

    def step(k):
        x, y = batches[k % len(batches)]
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    t = time.perf_counter()
    k = 0
    while time.perf_counter() - t < 1.0 or k < 5:  # warm-up
        step(k)
        k += 1
    n = 0
    c0, t0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step(n)
        n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({
        "model": kind, "threads": threads, "batch": B, "steps": n,
        "samples_per_s": round(n * B / wall), "samples_per_cpu_s": round(n * B / cpu),
        "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "torch": torch.__version__,
    }))


def predict(kind, model, threads, seconds):
    model.eval()
    b = 1024
    x = torch.rand((b, F) if kind == "seed" else (b, W, F)) * 4 - 2
    with torch.inference_mode():
        t = time.perf_counter()
        while time.perf_counter() - t < 1.0:  # warm-up
            torch.softmax(model(x), dim=-1)
        n = 0
        c0, t0 = time.process_time(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            torch.softmax(model(x), dim=-1)
            n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({
        "model": kind, "threads": threads, "batch": b, "calls": n,
        "flows_per_s": round(n * b / wall), "flows_per_cpu_s": round(n * b / cpu),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
