#!/usr/bin/env bash
# Builds the real engine for `make e2e` from Go modules (nothing else is reachable): the Pulumi CLI, the
# kubernetes provider, etcd, kube-apiserver/-controller-manager/-scheduler and kwok.
# Binaries go to ${PLATFORM_E2E_CACHE:-$HOME/.cache/platform-e2e}/bin, outside the work tree; a binary already
# there is reused while the pins it was built from (e2e/pins.env) are unchanged. Prints the bin directory on its last line.
#
#   e2e/toolchain.sh            build what is missing
#   e2e/toolchain.sh --print    print the bin directory, build nothing (exit 1 when incomplete)
set -euo pipefail

E2E_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=pins.env
source "$E2E_DIR/pins.env"
PREFIX="${PLATFORM_E2E_CACHE:-$HOME/.cache/platform-e2e}"
BIN="$PREFIX/bin"
SRC="$PREFIX/src"
LOGS="$PREFIX/logs"

# Every step: the file it makes in $BIN | the pins it is built from | the function that builds it.
# A step is rebuilt only when its own pins change (its stamp is $BIN/.<file>.pins), so adding a tool or moving
# one pin never rebuilds the rest. Steps are declared at the end, after their functions.
# CloudNativePG's operator (`manager controller`), for the e2e to run against the stacks' Clusters and Poolers. Two
# files from the same module go with it: its webhook configurations and its CRDs (the e2e installs those; the
# offline schemas in tools/crds must be the same files). Its webhook server listens on every interface
# (controller-runtime's default host, no flag), so it is built from a copy of the served module (Go refuses to
# overlay files of the module cache) with that one line set to 127.0.0.1, as every server the e2e starts.
build_cnpg() {
  local dir
  dir="$(module_field "github.com/cloudnative-pg/cloudnative-pg@$CNPG_VERSION" Dir)"
  rm -rf "$SRC/cnpg" && cp -r "$dir" "$SRC/cnpg" && chmod -R u+w "$SRC/cnpg" && cd "$SRC/cnpg"
  sed -i 's/^\(\t*\)Port:    port,$/\1Host:    "127.0.0.1",\n\1Port:    port,/' internal/cmd/manager/controller/controller.go
  grep -q 'Host:    "127.0.0.1",' internal/cmd/manager/controller/controller.go ||
    { echo "the webhook server's Port line moved in internal/cmd/manager/controller/controller.go" >&2; return 1; }
  go build -trimpath -ldflags "-s -w" -o "$BIN/cnpg-manager.tmp" ./cmd/manager
  cp config/webhook/manifests.yaml "$BIN/cnpg-webhooks.yaml"
  operator_crds "$PWD" postgresql.cnpg.io
  mv "$BIN/cnpg-manager.tmp" "$BIN/cnpg-manager"
}

# The Barman Cloud plugin (`manager operator`): its own wrapper module, because in one module with the operator
# Go's version selection would lift the operator's cnpg-i to the plugin's.
build_barman_cloud() {
  local mod=github.com/cloudnative-pg/plugin-barman-cloud
  wrapper barman-cloud
  go get "$mod/cmd/manager@$BARMAN_CLOUD_PLUGIN_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$BIN/barman-cloud-manager.tmp" "$mod/cmd/manager"
  operator_crds "$(module_field "$mod@$BARMAN_CLOUD_PLUGIN_VERSION" Dir)" barmancloud.cnpg.io
  mv "$BIN/barman-cloud-manager.tmp" "$BIN/barman-cloud-manager"
}

# An operator module's CRDs of one group as $BIN/crds/<group>/<plural>.yaml (the layout tools/crds/extract.py reads).
operator_crds() {  # operator_crds MODULE_DIR GROUP
  local file
  rm -rf "$BIN/crds/$2" && mkdir -p "$BIN/crds/$2"
  for file in "$1/config/crd/bases/$2"_*.yaml; do
    cp "$file" "$BIN/crds/$2/$(basename "$file" | sed "s/^$2_//")"
  done
}

STEPS=()

stamp() { echo "$BIN/.$1.pins"; }

built() {  # built NAME PINS
  [[ -e "$BIN/$1" && -f "$(stamp "$1")" && "$(cat "$(stamp "$1")")" == "$2" ]]
}

complete() {
  local entry name pinned
  for entry in "${STEPS[@]}"; do
    IFS='|' read -r name pinned _ <<<"$entry"
    built "$name" "$pinned" || return 1
  done
}

mkdir -p "$BIN" "$SRC" "$LOGS"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# A fresh wrapper module: the replaces of a dependency's go.mod are ignored by Go, so a wrapper that
# requires the module is how a program with upstream `=> ../sdk` replaces gets built.
wrapper() {
  rm -rf "$SRC/$1" && mkdir -p "$SRC/$1" && cd "$SRC/$1"
  go mod init "local/$1" >/dev/null 2>&1
}

# One field (Dir: the unpacked module, GoMod: its go.mod) of a module version, downloaded if need be.
module_field() {
  go mod download -json "$1" | python3 -c "import json, sys; print(json.load(sys.stdin)['$2'])"
}

step() {  # step NAME PINS FUNCTION
  local name="$1" pinned="$2" build="$3"
  if built "$name" "$pinned"; then echo "reuse  $BIN/$name"; return; fi
  local start=$SECONDS
  echo "build  $name (log: $LOGS/$name.log)"
  rm -f "$(stamp "$name")"
  if ! ( "$build" ) >"$LOGS/$name.log" 2>&1; then
    echo "FAILED $name after $((SECONDS - start)) s; last lines of $LOGS/$name.log:" >&2
    tail -n 25 "$LOGS/$name.log" >&2
    exit 1
  fi
  echo "$pinned" >"$(stamp "$name")"
  echo "built  $name in $((SECONDS - start)) s"
  echo "$name $((SECONDS - start))" >>"$LOGS/build-seconds.txt"
}

build_pulumi() {
  wrapper pulumi
  local r
  for r in $PULUMI_REPLACES; do go mod edit -replace="$r"; done
  go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION"
  go build -trimpath -tags "osusergo grpcnotrace" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    -o "$BIN/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

# The provider's main.go embeds schema-embed.json and terraform-mapping-embed.json, which upstream
# generates (gitignored) from the committed schema.json and terraform-mapping.json: build from a copy.
build_kubernetes_provider() {
  local mod=github.com/pulumi/pulumi-kubernetes/provider/v4 dir
  dir="$(module_field "$mod@$K8S_PROVIDER_MODULE_VERSION" Dir)"
  rm -rf "$SRC/kubernetes-provider" && cp -r "$dir" "$SRC/kubernetes-provider" && chmod -R u+w "$SRC/kubernetes-provider"
  cd "$SRC/kubernetes-provider"
  go mod edit -dropreplace github.com/pulumi/pulumi-kubernetes/sdk/v4 \
    -require "github.com/pulumi/pulumi-kubernetes/sdk/v4@$K8S_PROVIDER_SDK_VERSION"
  ( cd cmd/pulumi-resource-kubernetes && K8S_PROVIDER_VERSION="$K8S_PROVIDER_VERSION" python3 - <<'PY'
import json, os
schema = json.load(open("schema.json"))
schema["version"] = os.environ["K8S_PROVIDER_VERSION"]
json.dump(schema, open("schema-embed.json", "w"), separators=(",", ":"))
json.dump(json.load(open("terraform-mapping.json")), open("terraform-mapping-embed.json", "w"), separators=(",", ":"))
PY
  )
  GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PROVIDER_VERSION" \
    -o "$BIN/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes
}

build_etcd() {
  wrapper etcd
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
}

# k8s.io/kubernetes requires its staging modules at v0.0.0 with `=> ./staging/...` replaces; a wrapper
# maps each one to its published v0.<minor>.<patch>.
build_kubernetes() {
  wrapper kubernetes
  local gomod minor="${KUBERNETES_VERSION#v1.}" m
  gomod="$(module_field "k8s.io/kubernetes@$KUBERNETES_VERSION" GoMod)"
  for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace="$m=$m@v0.$minor"
  done
  go get "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBERNETES_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$KUBERNETES_VERSION"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    go build -trimpath -ldflags "$ldflags" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
  done
  for c in kube-apiserver kube-controller-manager kube-scheduler; do mv "$BIN/$c.tmp" "$BIN/$c"; done
}

build_kwok() {
  wrapper kwok
  go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok
}

# kwok does nothing without Stages: upstream's own (Apache-2.0, from the same module) that make nodes Ready and
# keep them so (heartbeat), and move scheduled pods to Running/Ready and deleted pods away.
build_kwok_stages() {
  local dir stage
  dir="$(module_field "sigs.k8s.io/kwok@$KWOK_VERSION" Dir)"
  for stage in node/fast/node-initialize node/heartbeat/node-heartbeat pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"
    cat "$dir/kustomize/stage/$stage.yaml"
  done >"$BIN/kwok-stages.yaml.tmp"
  mv "$BIN/kwok-stages.yaml.tmp" "$BIN/kwok-stages.yaml"
}

# Programs of our own (e2e/go/<name>/main.go) built against served libraries: their pins carry the source's hash,
# so an edit rebuilds them.
source_hash() { sha256sum "$E2E_DIR/go/$1/main.go" | cut -c1-16; }

# promtool: Prometheus' rule checker and unit-test runner. remove_all_sd leaves out the 25 cloud service-discovery
# plugins (plugins/plugin_*.go are `//go:build !remove_all_sd || ...`): the rule commands use none of them.
build_promtool() {
  wrapper promtool
  go get "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
  go build -trimpath -tags "remove_all_sd netgo builtinassets" \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
    -o "$BIN/promtool" github.com/prometheus/prometheus/cmd/promtool
}

# po-webhook: prometheus-operator's rule and AlertmanagerConfig validation (its public functions) as a webhook.
build_po_webhook() {
  wrapper po-webhook
  cp "$E2E_DIR/go/po-webhook/main.go" .
  go get "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION"
  go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$BIN/po-webhook" .
}

# cm-platform: cert-manager's controllers and webhook validation. The validation lives in internal/ packages, so the
# main is built inside a copy of the module (as the kubernetes provider is); the module's CRDs go beside it.
build_cert_manager() {
  local dir group file
  dir="$(module_field "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" Dir)"
  rm -rf "$SRC/cert-manager" && cp -r "$dir" "$SRC/cert-manager" && chmod -R u+w "$SRC/cert-manager"
  mkdir -p "$SRC/cert-manager/cmd/cm-platform"
  cp "$E2E_DIR/go/cm-platform/main.go" "$SRC/cert-manager/cmd/cm-platform/"
  cd "$SRC/cert-manager"
  GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$BIN/cm-platform.tmp" ./cmd/cm-platform
  for group in cert-manager.io acme.cert-manager.io; do
    rm -rf "$BIN/crds/$group" && mkdir -p "$BIN/crds/$group"
    for file in "deploy/crds/${group}_"*.yaml; do cp "$file" "$BIN/crds/$group/${file#"deploy/crds/${group}_"}"; done
  done
  mv "$BIN/cm-platform.tmp" "$BIN/cm-platform"
}

STEPS=(
  "pulumi|$PULUMI_VERSION $PULUMI_REPLACES|build_pulumi"
  "pulumi-resource-kubernetes|$K8S_PROVIDER_MODULE_VERSION $K8S_PROVIDER_SDK_VERSION $K8S_PROVIDER_VERSION|build_kubernetes_provider"
  "etcd|$ETCD_VERSION|build_etcd"
  # One step makes all three control-plane binaries (they share one dependency graph).
  "kube-scheduler|$KUBERNETES_VERSION|build_kubernetes"
  "kwok|$KWOK_VERSION|build_kwok"
  "kwok-stages.yaml|$KWOK_VERSION|build_kwok_stages"
  "cnpg-manager|$CNPG_VERSION|build_cnpg"
  "barman-cloud-manager|$BARMAN_CLOUD_PLUGIN_VERSION|build_barman_cloud"
  "promtool|$PROMETHEUS_MODULE_VERSION $PROMETHEUS_VERSION|build_promtool"
  "po-webhook|$PROMETHEUS_OPERATOR_VERSION $(source_hash po-webhook)|build_po_webhook"
  "cm-platform|$CERT_MANAGER_VERSION $(source_hash cm-platform)|build_cert_manager"
)

if [[ "${1:-}" == "--print" ]]; then
  complete || exit 1
  echo "$BIN"
  exit 0
fi

mkdir -p "$BIN" "$SRC" "$LOGS"
start=$SECONDS
for entry in "${STEPS[@]}"; do
  IFS='|' read -r name pinned build <<<"$entry"
  step "$name" "$pinned" "$build"
done
complete
echo "toolchain ready in $((SECONDS - start)) s"
echo "$BIN"
