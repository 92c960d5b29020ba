"""PyTorch's scaled_dot_product_attention on the same GPU and shapes as attention.gpu.ts.

Causal prefill (B 1, H 16, d 128, N 2048 and 8192) and single-token decode (T 1K..64K), fp32
with TF32 off (the precision attnkit computes in) and bf16 for scale. Timed with CUDA events:
the median of `iters` calls after `warm` warm-up calls. Prints one JSON object.
"""
import json

import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
DEVICE = "cuda"
B, H, D = 1, 16, 128


def median_ms(fn, warm=3, iters=10):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


result = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}
for n in (2048, 8192):
    for dtype in (torch.float32, torch.bfloat16):
        q = torch.randn(B, H, n, D, device=DEVICE, dtype=dtype)
        k, v = torch.randn_like(q), torch.randn_like(q)
        ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
        result[f"prefill causal N={n} H={H} d={D} {str(dtype)[6:]}"] = {"ms": ms, "TFLOP/s": 2 * n * n * D * H * B / ms / 1e9}
for t in (1024, 4096, 16384, 65536):
    for dtype in (torch.float32, torch.bfloat16):
        q = torch.randn(B, H, 1, D, device=DEVICE, dtype=dtype)
        k = torch.randn(B, H, t, D, device=DEVICE, dtype=dtype)
        v = torch.randn_like(k)
        ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), warm=5, iters=50)
        result[f"decode T={t} H={H} d={D} {str(dtype)[6:]}"] = {"ms": ms, "GB/s": 2 * t * H * D * q.element_size() / ms / 1e6}
print(json.dumps(result, indent=1))
