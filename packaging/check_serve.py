"""Check a built bundle's `fireside serve`: it prints its address, answers one chat request, and
exits 0 on SIGTERM. Run by build.sh with the build venv's Python:

    python packaging/check_serve.py BUNDLE_BINARY DATA_DIR [env -i ... prefix]
"""

from __future__ import annotations

import subprocess
import sys

import httpx


def main() -> int:
    """Start the bundled server, ask it once, stop it; 0 when all went well."""
    binary, data, env_prefix = sys.argv[1], sys.argv[2], sys.argv[3:]
    command = [*env_prefix, binary, "serve", "--port", "0", "--data-dir", data]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    if " at http" not in line:
        process.kill()
        print(f"  FAIL no address printed: {line!r} {process.stderr.read()[-500:]}")
        return 1
    base = line.split(" at ")[1].split(" ")[0]
    body = {"model": "x", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    try:
        reply = httpx.post(base + "/chat/completions", json=body, timeout=60).json()
    finally:
        process.terminate()
    code = process.wait(30)
    text = reply["choices"][0]["message"]["content"]
    tokens = reply["usage"]["completion_tokens"]
    print(
        f"  {'ok  ' if code == 0 else 'FAIL'} {base}: {tokens} tokens ({text[:40]!r}); exit {code} on SIGTERM"
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
