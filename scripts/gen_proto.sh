#!/usr/bin/env bash
# Regenerates the committed Python code for proto/ (messages, .pyi stubs, gRPC stubs).
# The one way generated code is produced; tests/test_proto_drift.py fails when the result differs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/python"}
python=${PYTHON:-python}
cd "$root"
"$python" -m grpc_tools.protoc -I proto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  proto/returnbridge/api/v1/*.proto
for pkg in "$out/returnbridge/api" "$out/returnbridge/api/v1"; do
  [ -f "$pkg/__init__.py" ] || echo '"""Generated protobuf and gRPC code; regenerate with `make proto`, never edit."""' > "$pkg/__init__.py"
done
