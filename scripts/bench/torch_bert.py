"""The tool users would otherwise pick, for `make bench`: the same BERT classifier in PyTorch on the CPU.

transformers' BertModel loaded from the same checkpoint folder, mean pooling, dropout, a linear head,
cross-entropy, clip_grad_norm_ and torch.optim.AdamW: the same model, batch and sequence length as the
TypeScript engine's step. Inference in eval mode under torch.inference_mode(), fp32 and with
torch.ao.quantization.quantize_dynamic (int8 Linear layers), PyTorch's own dynamic quantization.

    .cache/bench-venv/bin/python scripts/bench/torch_bert.py CHECKPOINT_DIR train|infer|infer-int8 BATCH SEQ STEPS

Prints one JSON line: examples per second and peak resident memory (MB) of this process.
"""
import json
import os
import resource
import sys
import time

import torch
import transformers

ckpt, mode, batch, seq, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(len(os.sched_getaffinity(0)))
torch.manual_seed(0)
NUM_LABELS = 77


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bert = transformers.BertModel.from_pretrained(ckpt, add_pooling_layer=False)
        self.dropout = torch.nn.Dropout(self.bert.config.hidden_dropout_prob)
        self.head = torch.nn.Linear(self.bert.config.hidden_size, NUM_LABELS)

    def forward(self, ids, mask):
        h = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return self.head(self.dropout(pooled))


model = Classifier()
ids = torch.randint(1000, 29000, (batch, seq))
mask = torch.ones(batch, seq, dtype=torch.long)
labels = torch.randint(0, NUM_LABELS, (batch,))
warmup = 3

if mode == "train":
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(ids, mask), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
else:
    model.eval()
    if mode == "infer-int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)

    def step():
        with torch.inference_mode():
            model(ids, mask).softmax(-1)

for _ in range(warmup):
    step()
t0 = time.perf_counter()
for _ in range(steps):
    step()
seconds = time.perf_counter() - t0
print(json.dumps({
    "examples_per_second": batch * steps / seconds,
    "ms_per_batch": 1000 * seconds / steps,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "threads": torch.get_num_threads(),
    "torch": torch.__version__,
}))
