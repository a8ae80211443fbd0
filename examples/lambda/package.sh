#!/usr/bin/env bash
# Builds the Lambda deployment zip:
#   bootstrap                    the entry point (runs the binary through lib/'s loader)
#   bin/filebuilder-lambda       the runtime
#   lib/ld-linux-x86-64.so.2     the dynamic loader, and every shared library
#   lib/<soname>...              the runtime needs (as ldd resolves them), glibc included
#
# usage: package.sh BINARY BOOTSTRAP OUTPUT.zip [STRIP]
# The zip is reproducible: fixed file times and modes, sorted entries.
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 BINARY BOOTSTRAP OUTPUT.zip [STRIP]" >&2
  exit 2
fi
binary=$1
bootstrap=$2
output=$3
strip=${4:-}

for tool in ldd zip; do
  command -v "$tool" >/dev/null || { echo "package.sh: '$tool' is needed (Debian: apt-get install zip libc-bin)" >&2; exit 1; }
done

output_dir=$(cd "$(dirname "$output")" && pwd)
stage=$(mktemp -d "$output_dir/lambda-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -m 0755 "$stage/bin" "$stage/lib"

install -m 0755 "$bootstrap" "$stage/bootstrap"
install -m 0755 "$binary" "$stage/bin/filebuilder-lambda"
if [ -n "$strip" ]; then
  "$strip" --strip-unneeded "$stage/bin/filebuilder-lambda"
fi

# ldd lines: "name => /path (0x...)", "/path/ld-linux-x86-64.so.2 (0x...)",
# "linux-vdso.so.1 (0x...)" (in the kernel: nothing to copy), "name => not found".
loader=""
while read -r first second third _; do
  if [ "$second" = "=>" ]; then
    if [ "$third" = "not" ]; then
      echo "package.sh: $binary needs $first, which ldd cannot find" >&2
      exit 1
    fi
    install -m 0644 "$(readlink -f "$third")" "$stage/lib/$first"
  elif [ "${first#/}" != "$first" ]; then
    loader=$first
    install -m 0755 "$(readlink -f "$first")" "$stage/lib/$(basename "$first")"
  fi
done < <(ldd "$binary")

if [ -z "$loader" ] || [ ! -e "$stage/lib/ld-linux-x86-64.so.2" ]; then
  echo "package.sh: no x86-64 dynamic loader in ldd's output (the bootstrap runs lib/ld-linux-x86-64.so.2)" >&2
  exit 1
fi

find "$stage" -exec touch -h -d '2020-01-01 00:00:00 UTC' {} +
rm -f "$output"
(cd "$stage" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | TZ=UTC zip -q -X -@ "$output.tmp")
mv "$output.tmp" "$output"
