#!/bin/bash
# Device run 2 for issue 16: the gpu_fleet.upgrade collection's gate.yml (role upgrade_gates) over a local
# connection, the gate benchmark, the CLI at levels 1 and 2. Run from a folder carried to the device holding
# whl/ (wheels of ansible-core, ansible-runner, pydantic, psycopg and their needs for Python 3.12), src/ (this
# checkout's orchestrator/, benchmarks/, pyproject.toml) and coll/ansible_collections/gpu_fleet/upgrade (this
# checkout's playbooks/ copied with its links resolved: cp -rL playbooks coll/ansible_collections/gpu_fleet/upgrade).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
exec > >(tee "$OUT/log2.txt") 2>&1
date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PATH=/tmp/site/bin:$PATH
LIBS=$(find /usr/local /opt /usr/lib -name 'libcudart.so.13' -o -name 'libcudnn.so.9' -o -name 'libnccl.so.2' 2>/dev/null | xargs -r -n1 dirname | sort -u)
ARGS=""; for d in $LIBS; do ARGS="$ARGS --lib-dir $d"; done
python3 src/benchmarks/gate_local.py 3 -- --cuda 13.0 --cudnn $ARGS
python3 -m orchestrator gate --local --level 2 --cuda 13.0 --cudnn --output json $ARGS > $OUT/gate-level2-cli.json; echo "level 2 rc=$?"
JD=$(printf '"%s",' $LIBS); JD="[${JD%,}]"
for lvl in 0 1; do
  s=$(date +%s.%N)
  ANSIBLE_COLLECTIONS_PATH=$PWD/coll ANSIBLE_CALLBACK_RESULT_FORMAT=json ansible-playbook -i localhost, -c local -v \
    -e "{\"ansible_become\": false, \"ansible_python_interpreter\": \"$(which python3)\", \"gate_level\": $lvl, \"gate_expect_driver\": \"580.159.04\", \"gate_cuda\": \"13.0\", \"gate_need_cudnn\": true, \"gate_nccl\": true, \"gate_workload\": {\"command\": [\"python3\", \"-c\", \"import torch; x = torch.ones(4096, 4096, device='cuda'); print(float((x @ x).sum()))\"], \"timeout_s\": 300}, \"upgrade_gates_library_dirs\": $JD}" \
    coll/ansible_collections/gpu_fleet/upgrade/gate.yml > $OUT/ansible-collection-gate-l$lvl.txt 2>&1
  echo "collection gate.yml gate_level=$lvl: rc=$? wall=$(python3 -c "import sys,time; print(round(time.time()-float(sys.argv[1]),2))" $s) s"
  tail -4 $OUT/ansible-collection-gate-l$lvl.txt
done
grep -o '"gpu_gate": {.*' $OUT/ansible-collection-gate-l0.txt | head -c 600; echo
