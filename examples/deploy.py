"""A deployment script from the README's library section: a shipped device table, a CSV
accuracy table, the exact frontier, three budgets, predictions, and an ONNX file.

Run from the repository root (the ONNX export needs the ``torch`` extra)::

    python examples/deploy.py [ACCURACY.csv] [OUT.onnx]

``tiny-32_accuracy.csv`` beside this file is the accuracy table of a short ``hwnas train``
run on digits (2 epochs): a stand-in for your own.
"""

import sys
import warnings
from pathlib import Path

import hwnas
from hwnas.solver import frontier

here = Path(__file__).parent
csv = sys.argv[1] if len(sys.argv) > 1 else here / "tiny-32_accuracy.csv"
out = sys.argv[2] if len(sys.argv) > 2 else "deploy_net.onnx"

with warnings.catch_warnings(record=True) as caught:  # a table from another machine says so
    warnings.simplefilter("always", hwnas.HwnasWarning)
    dev = hwnas.load_device_table("tiny-32_onnxruntime_cpu_fp32")  # or a path
for w in caught:
    print("note:", w.message)
acc = hwnas.load_accuracy_table(csv, space="tiny-32")       # a CSV names no space
front = frontier(acc, dev)                                  # every budget at once
margin, why = dev.margin()                                  # what `hwnas run` keeps free
print(f"frontier: {len(front)} networks, {front.fastest_ms():.3f} ms and up; margin "
      f"{100 * margin:.1f}% ({why})")
for budget in (0.2, 0.25, 0.3):
    arch = front.best(budget, margin=margin)
    pred = dev.predict(arch)                                # in the table's statistic
    print(f"{budget} ms: {arch.notation()}  predicted {pred.latency_ms:.4f} ms "
          f"({pred.figure}), score {arch.score:.4f}")
print("wrote", arch.export(out))                            # fresh weights; supernet=CKPT
