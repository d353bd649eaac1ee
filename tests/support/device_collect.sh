#!/usr/bin/env bash
# Prove fact collection on a real GPU machine (the `device` tool's H100): run the collector three ways
# and keep what they print under $OUT. Wheels come from .whl/ (that machine has no network).
set -uo pipefail
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
{
  echo "## nvidia-smi --query-gpu=driver_version --format=csv,noheader"
  nvidia-smi --query-gpu=driver_version --format=csv,noheader
  echo "## nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader"
  nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader
  echo "## /proc/driver/nvidia/version"; cat /proc/driver/nvidia/version
  echo "## uname -r"; uname -r
  echo "## ls /usr/local"; ls -la /usr/local | grep -i cuda
  echo "## dpkg-query"; dpkg-query -W -f '${Package}\t${Version}\t${db:Status-Abbrev}\n' 'nvidia-*' 'cuda-toolkit-*' 'libcudnn*' 'libnccl*' 'datacenter-gpu-manager*' 2>&1 | head -40
  echo "## libraries"; readlink -f /lib/x86_64-linux-gnu/libnccl.so.2 /lib/x86_64-linux-gnu/libcudnn.so.9 2>&1
  ls /usr/include/cudnn_version*.h /usr/include/nccl.h /usr/include/x86_64-linux-gnu/cudnn_version*.h 2>&1
} > "$OUT/device-raw.txt" 2>&1
time python3 -m orchestrator facts --local --output json > "$OUT/device-local.json"; echo "local json rc=$?"
python3 -m orchestrator facts --local > "$OUT/device-local.txt"; echo "local table rc=$?"
cat > /tmp/device-inventory.ini <<INV
[gpu]
device-h100 ansible_connection=local ansible_python_interpreter=$(command -v python3) upgrade_pool=device
INV
time python3 -m orchestrator facts -i /tmp/device-inventory.ini --output json > "$OUT/device-ansible.json"; echo "ansible json rc=$?"
python3 -m orchestrator facts -i /tmp/device-inventory.ini > "$OUT/device-ansible.txt"; echo "ansible table rc=$?"
python3 - <<'PY' > "$OUT/device-probe.txt"
from orchestrator.probe import parse_driver_query, parse_compute_apps
import subprocess
q = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True)
a = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader"], capture_output=True, text=True)
print("driver", parse_driver_query(q.stdout)); print("apps", parse_compute_apps(a.stdout))
PY
cat "$OUT/device-local.txt" "$OUT/device-ansible.txt" "$OUT/device-probe.txt"
