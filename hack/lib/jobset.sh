# Build and run the JobSet controller (jobset.x-k8s.io) as a plain process against the local cluster.
#
# Built from its published Go module into its own cache directory, keyed by the JobSet pin alone, so
# bumping JobSet rebuilds nothing else. Its admission webhooks (JobSet defaulting/validation, and the
# pod webhooks it scopes to JobSet pods) are served with certificates we issue once, for 127.0.0.1: the
# webhook configurations call the controller at https://127.0.0.1:<port>/..., which the API server on
# loopback can verify, so JobSets here are defaulted and validated exactly as in a cluster. JobSet's own
# certificate rotator is switched off (it would write into a Secret for an in-cluster Service).
# SPECFORGE_JOBSET=0 gives a cluster without JobSet.
# shellcheck shell=bash

# shellcheck source=hack/jobset.env
source "$HACK_DIR/jobset.env"

JOBSET_KEY_DIR="$CACHE_ROOT/specforge-k8s/jobset-$JOBSET_VERSION"
JOBSET_BIN="$JOBSET_KEY_DIR/bin/jobset-controller"
JOBSET_CRD="$JOBSET_KEY_DIR/manifests/jobset.x-k8s.io_jobsets.yaml"
JOBSET_WEBHOOKS="$JOBSET_KEY_DIR/manifests/webhooks.yaml"

jobset_present() { [ -x "$JOBSET_BIN" ] && [ -s "$JOBSET_CRD" ] && [ -s "$JOBSET_WEBHOOKS" ]; }

want_jobset() { [ "${SPECFORGE_JOBSET:-1}" != 0 ]; }

# build_jobset: the controller binary plus the CRD and webhook manifests its module ships (build lane).
build_jobset() {
  jobset_present && return 0
  local scratch dir
  scratch=$(mktemp -d "$KEY_DIR/src/jobset.XXXXXX")
  dir=$(module_field "sigs.k8s.io/jobset@$JOBSET_VERSION" Dir)
  # Built inside the module with its own go.mod and go.sum (what `go install pkg@version` does); `go install`
  # itself refuses here because the proxy serves exact JobSet versions but not its version list.
  (cd "$dir" && go build -mod=readonly -o "$scratch/jobset" \
    -ldflags "$LDFLAGS_STRIP -X sigs.k8s.io/jobset/pkg/version.GitVersion=$JOBSET_VERSION" .)
  mkdir -p "$scratch/manifests" "$(dirname "$JOBSET_BIN")"
  cp "$dir/config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml" "$dir/config/components/webhook/manifests.yaml" \
    "$scratch/manifests/"
  mv "$scratch/manifests/manifests.yaml" "$scratch/manifests/webhooks.yaml"
  rm -rf "$JOBSET_KEY_DIR/manifests"
  mv "$scratch/manifests" "$JOBSET_KEY_DIR/manifests"
  chmod 0755 "$scratch/jobset"
  mv "$scratch/jobset" "$JOBSET_BIN"
  rmdir "$scratch"
}

jobset_pid() {
  local pid
  pid=$(cat "$JOBSET_DIR/pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

issue_jobset_certs() {
  local certs="$JOBSET_DIR/certs"
  [ -s "$certs/tls.crt" ] && return 0
  mkdir -p "$certs"
  (
    cd "$certs" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -days 3650 -subj "/CN=jobset-webhook-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" -out ca.crt
    openssl req -newkey rsa:2048 -nodes -keyout tls.key -subj "/CN=127.0.0.1" -out tls.csr
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >tls.ext
    openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile tls.ext -out tls.crt
    rm -f tls.csr tls.ext ca.srl
  ) >"$JOBSET_DIR/certs.log" 2>&1
}

# jobset_webhook_configurations PORT: the shipped webhook manifests, each webhook pointed at
# 127.0.0.1:PORT with our CA, and the pod webhooks scoped to JobSet pods as JobSet's release does.
jobset_webhook_configurations() {
  # kubectl reads the YAML (python3 here has no YAML parser to rely on); python3 edits the JSON.
  kc create --dry-run=client -o json -f "$JOBSET_WEBHOOKS" | python3 -c '
import base64, json, sys
port, ca = sys.argv[1], open(sys.argv[2], "rb").read()
text, decoder, at, docs = sys.stdin.read(), json.JSONDecoder(), 0, []
while at < len(text):  # kubectl prints one JSON object per YAML document
    if text[at].isspace():
        at += 1
        continue
    obj, at = decoder.raw_decode(text, at)
    docs.extend(obj.get("items", [obj]))
for doc in docs:
    doc["metadata"]["name"] = "jobset-" + doc["metadata"]["name"]
    for hook in doc["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": base64.b64encode(ca).decode()}
        if hook["rules"][0]["resources"] == ["pods"]:
            hook["objectSelector"] = {"matchExpressions": [{"key": "jobset.sigs.k8s.io/jobset-name", "operator": "Exists"}]}
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))' "$1" "$JOBSET_DIR/certs/ca.crt"
}

start_jobset() {
  want_jobset || return 0
  if ! jobset_pid >/dev/null; then
    run_jobset_controller
  fi
  # Registered once the server answers (so no JobSet or JobSet pod is refused while it starts), and
  # again on every `up`, which finishes a start that stopped between the two.
  jobset_webhook_configurations "$(cat "$JOBSET_DIR/webhook-port")" | kc apply --server-side --force-conflicts -f - >/dev/null
}

run_jobset_controller() {
  mkdir -p "$JOBSET_DIR"
  issue_jobset_certs
  kc apply --server-side --force-conflicts -f "$JOBSET_CRD" >/dev/null
  local probe_port metrics_port webhook_port
  read -r probe_port metrics_port webhook_port < <(free_ports 3)
  echo "$webhook_port" >"$JOBSET_DIR/webhook-port"
  cat >"$JOBSET_DIR/config.yaml" <<YAML
apiVersion: config.jobset.x-k8s.io/v1alpha1
kind: Configuration
leaderElection:
  leaderElect: false
health:
  healthProbeBindAddress: 127.0.0.1:$probe_port
metrics:
  bindAddress: 127.0.0.1:$metrics_port
webhook:
  host: 127.0.0.1
  port: $webhook_port
  certDir: $JOBSET_DIR/certs
internalCertManagement:
  enable: false
YAML
  KUBECONFIG="$CLUSTER_KUBECONFIG" setsid "$JOBSET_BIN" --config="$JOBSET_DIR/config.yaml" \
    </dev/null >>"$JOBSET_DIR/jobset.log" 2>&1 &
  echo $! >"$JOBSET_DIR/pid"
  wait_jobset_ready "$probe_port"
}

wait_jobset_ready() {
  local probe_port=$1 deadline=$((SECONDS + 60))
  until curl -sf "http://127.0.0.1:$probe_port/readyz" >/dev/null 2>&1; do
    if ! jobset_pid >/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "error: the JobSet controller did not become ready; last log lines ($JOBSET_DIR/jobset.log):" >&2
      tail -n 20 "$JOBSET_DIR/jobset.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

stop_jobset() {
  local pid
  if pid=$(jobset_pid); then
    kill "$pid"
    wait_for_exit "$pid"
  fi
  rm -f "$JOBSET_DIR/pid"
}
