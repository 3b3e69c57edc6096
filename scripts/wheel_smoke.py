"""Install the release wheel into a clean venv and prove it runs: `make test-wheel`.

The wheel must carry everything `serve` reads at run time (the Rust extension, mapping packs, routing
defaults), so this installs it with nothing but the hashed runtime lock, away from the source tree, then:
``returnbridge mapping check`` on every shipped pack file, and ``returnbridge serve`` until gRPC health
answers SERVING, then SIGINT and a clean exit. Any failure exits non-zero with the step that failed.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

SERVE_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0

# Runs inside the clean venv: only the wheel and its locked dependencies are importable there.
_HEALTH_PROBE = """
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
"""

_WHERE_INSTALLED = """
import pathlib, returnbridge, returnbridge._mapper as m
from returnbridge.mapping.registry import PACKS_DIR
from returnbridge.routing.rules import DEFAULT_ROUTES
print(pathlib.Path(returnbridge.__file__).parent)
print(m.__file__)
assert DEFAULT_ROUTES.is_file(), DEFAULT_ROUTES
# Spec files only: lookup tables under tables/ are read through the specs that name them.
for p in sorted(PACKS_DIR.rglob("*.yaml")):
    if "tables" not in p.relative_to(PACKS_DIR).parts:
        print(p)
"""


def _fail(step: str, detail: str) -> None:
    print(f"wheel smoke test FAILED at {step}:\n{detail}", file=sys.stderr)
    sys.exit(1)


def _run(step: str, cmd: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        _fail(step, f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _serve_until_serving(rb: Path, py: Path, *, cwd: Path, env: dict[str, str]) -> None:
    cmd = [str(rb), "serve", "--grpc-port", "0", "--data-dir", str(cwd / "data")]
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    banner: list[str] = []
    target = None
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    try:
        while target is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                _fail("serve start", "".join(banner) or f"serve exited with {proc.wait()}")
            banner.append(line)
            match = re.match(r"\s+gRPC\s+(\S+)", line)
            if match:
                target = match.group(1)
        if target is None:
            _fail("serve start", "no gRPC endpoint in the banner:\n" + "".join(banner))
        status = ""
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [str(py), "-c", _HEALTH_PROBE, str(target)], cwd=cwd, env=env, capture_output=True, text=True
            )
            status = probe.stdout.strip() or probe.stderr.strip().splitlines()[-1:][0]
            if status == "SERVING":
                break
            time.sleep(0.5)
        if status != "SERVING":
            _fail("health", f"last health answer: {status}\n" + "".join(banner))
        print(f"serve: health SERVING at {target}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                _fail("stop", f"serve did not stop within {STOP_TIMEOUT_S:.0f}s of SIGINT")
            if code != 0:
                rest = proc.stdout.read() if proc.stdout else ""
                _fail("stop", f"serve exited with {code}\n{rest}")
            print("serve: stopped cleanly on SIGINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel-dir", type=Path, required=True)
    parser.add_argument("--runtime-lock", type=Path, required=True)
    parser.add_argument("--pip-version", required=True)
    args = parser.parse_args()

    wheels = sorted(args.wheel_dir.glob("returnbridge-*.whl"))
    if len(wheels) != 1:
        _fail("find wheel", f"expected one returnbridge wheel in {args.wheel_dir}, found {wheels}")
    wheel, lock = wheels[0].resolve(), args.runtime_lock.resolve()

    with tempfile.TemporaryDirectory(prefix="rb-wheel-") as tmp:
        root = Path(tmp)
        env_dir = root / "venv"
        venv.EnvBuilder(with_pip=True).create(env_dir)
        py, pip, rb = (
            env_dir / "bin" / "python",
            [str(env_dir / "bin" / "python"), "-m", "pip"],
            env_dir / "bin" / "returnbridge",
        )
        # Nothing of the source tree or the dev venv may leak in: run from the temp dir with a clean path.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{env_dir / 'bin'}:{env.get('PATH', '')}"
        env["RETURNBRIDGE_METRICS__PORT"] = "0"
        env["RETURNBRIDGE_CONSOLE__PORT"] = "0"
        env["GRPC_ENABLE_FORK_SUPPORT"] = "false"

        _run("pip", [*pip, "install", "-q", f"pip=={args.pip_version}"], cwd=root, env=env)
        _run(
            "runtime lock",
            [*pip, "install", "-q", "--require-hashes", "--no-deps", "-r", str(lock)],
            cwd=root,
            env=env,
        )
        _run("wheel install", [*pip, "install", "-q", "--no-deps", str(wheel)], cwd=root, env=env)
        _run("pip check", [*pip, "check"], cwd=root, env=env)
        print(f"installed {wheel.name} with {lock.name}")

        where = _run("import", [str(py), "-c", _WHERE_INSTALLED], cwd=root, env=env).splitlines()
        package, extension, packs = Path(where[0]), Path(where[1]), where[2:]
        if env_dir not in package.parents or env_dir not in Path(extension).parents:
            _fail("import", f"returnbridge imported from {package}, not from the clean venv")
        if not packs:
            _fail("packs", "the wheel carries no mapping pack files")

        out = _run("mapping check", [str(rb), "mapping", "check", *packs], cwd=root, env=env)
        print(
            f"mapping check: {len(packs)} shipped pack files OK"
            + (f" ({out.strip().splitlines()[-1]})" if out.strip() else "")
        )

        _serve_until_serving(rb, py, cwd=root, env=env)
    print("wheel smoke test passed")


if __name__ == "__main__":
    main()
