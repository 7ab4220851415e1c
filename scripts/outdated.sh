#!/usr/bin/env bash
# Lists the modules wghooks requires directly that have a newer version on
# the module proxy, and the Go toolchain go.mod names. Read-only: it changes
# nothing. Upgrade with `go get MODULE@VERSION && go mod tidy`, then `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
echo "go.mod asks for Go $(sed -n 's/^go //p' go.mod); this machine runs $($GO env GOVERSION)"
direct=$($GO list -m -f '{{if not .Indirect}}{{if not .Main}}{{.Path}}{{end}}{{end}}' all)
out=$($GO list -m -u -e -f '{{if .Update}}{{.Path}} {{.Version}} -> {{.Update.Version}}{{end}}' $direct | sed '/^$/d')
if [ -z "$out" ]; then
  echo "every direct module is at the newest version the proxy serves"
else
  echo "direct modules with a newer version:"
  echo "$out" | sed 's/^/  /'
fi
