#!/usr/bin/env bash
# Install llama-cpp-python into a virtual environment from a portable (AVX2) build.
#
# PyPI has no wheel for llama-cpp-python, and a default source build targets the build machine's exact CPU
# (-march=native): on a CPU with AMX or AVX-512 that build crashed here, and it would not run on a CPU
# without them. We build once with portable flags into a per-machine cache, keyed by version and flags,
# and install from there on every later run (a source build takes about 18 minutes on 2 cores).
set -euo pipefail
venv=${1:-.venv}
version=${LLAMA_CPP_VERSION:-0.3.36}
flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AVX_VNNI=OFF"
key=$(printf '%s %s' "$version" "$flags" | sha256sum | cut -c1-12)
cache=${GENTOOL_WHEEL_CACHE:-$HOME/.cache/gentool-router/wheels}/llama-cpp-python-$version-$key

if "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('llama-cpp-python') != '$version')" 2>/dev/null \
   && [ -f "$venv/.llama-cpp-$key" ]; then
  exit 0
fi
if ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "Building llama-cpp-python $version for AVX2 CPUs (once per machine, about 18 minutes on 2 cores)..."
  mkdir -p "$cache.partial"
  CMAKE_ARGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$venv/bin/pip" wheel --no-deps --no-cache-dir "llama-cpp-python==$version" -w "$cache.partial"
  rm -rf "$cache" && mv "$cache.partial" "$cache"
fi
wheel=$(ls "$cache"/llama_cpp_python-*.whl | head -n 1)
"$venv/bin/pip" install --no-deps --force-reinstall "$wheel"
"$venv/bin/pip" install "$wheel"   # its dependencies (numpy, diskcache, jinja2) from the registry
touch "$venv/.llama-cpp-$key"
