#!/bin/bash
# Device run for issue 16: the gate on a real H200, over the CLI and over Ansible (local connection).
# Its pb/ held device_gate/gate-local.yml with an interim module (library/gpu_gate.py calling run_gate, before the
# role moved into the gpu_fleet.upgrade collection); device_gate2.sh runs the collection's own gate.yml.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
exec > >(tee "$OUT/log.txt") 2>&1
el() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$1" "$(date +%s.%N)"; }
date -u; uname -r; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PATH=/tmp/site/bin:$PATH
LIBS=$(find /usr/local /opt /usr/lib -name 'libcudart.so.13' -o -name 'libcudnn.so.9' -o -name 'libnccl.so.2' 2>/dev/null | xargs -r -n1 dirname | sort -u)
echo "library folders: $LIBS"
ARGS=""; for d in $LIBS; do ARGS="$ARGS --lib-dir $d"; done
for i in 1 2 3; do
  s=$(date +%s.%N); python3 -m orchestrator gate --local --cuda 13.0 --cudnn --output json $ARGS > $OUT/gate-level1.json; rc=$?
  echo "level-1 gate run $i: rc=$rc wall=$(el $s) s"
done
python3 -m orchestrator gate --local --cuda 13.0 --cudnn $ARGS | tee $OUT/gate-level1.txt
s=$(date +%s.%N); python3 -m orchestrator gate --local --level 2 --cuda 13.0 --cudnn --output json $ARGS > $OUT/gate-level2.json
echo "level-2 gate: rc=$? wall=$(el $s) s"
CUDA_VISIBLE_DEVICES= python3 -m orchestrator gate --local --cuda 13.0 --output json $ARGS > $OUT/gate-no-device.json; echo "no-device gate rc=$?"
python3 - > $OUT/probe-bad-ptx.json <<'PY'
import json
from orchestrator.hostside.cuda_probe import driver_check, in_child
print(json.dumps(in_child(driver_check, 60, ptx_isa="9.9"), indent=2))
PY
echo "bad PTX probe:"; cat $OUT/probe-bad-ptx.json
cd pb; JD=$(printf '"%s",' $LIBS); JD="[${JD%,}]"
s=$(date +%s.%N)
ANSIBLE_CALLBACK_RESULT_FORMAT=json ansible-playbook -i localhost, -v gate-local.yml \
  -e "{\"gate_cuda\": \"13.0\", \"gate_library_dirs\": $JD, \"ansible_python_interpreter\": \"$(which python3)\"}" > $OUT/ansible-gate.txt 2>&1
echo "ansible gate playbook: rc=$? wall=$(el $s) s"
tail -5 $OUT/ansible-gate.txt
python3 -c 'import json; d=json.load(open("'$OUT'/gate-level1.json")); print(json.dumps(d["figures"]), d["seconds"], d["problems"])'
python3 -c 'import json; d=json.load(open("'$OUT'/gate-level2.json")); print(json.dumps(d["probe"].get("nccl")), d["problems"])'
