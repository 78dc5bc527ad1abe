# Run Kubeflow training-operator (PyTorchJob only) as a plain process against the local cluster.
#
# In a cluster it gets its webhook certificate from a Secret mounted by the kubelet, and its cert
# rotator waits until the files appear. Out of cluster nothing mounts them, so we issue the CA and
# serving certificate ourselves (valid for ten years, so the rotator finds them valid and never
# rotates), store them in the Secret the rotator reads, and write the files where both the rotator
# (a fixed /tmp path) and controller-runtime's webhook server ($TMPDIR) look. No webhook
# configuration is registered: the API server could not verify a certificate issued for
# training-operator.kubeflow.svc when calling 127.0.0.1, so PyTorchJobs are not webhook-validated here.
# shellcheck shell=bash

# shellcheck source=hack/lib/node-env.sh
source "$HACK_DIR/lib/node-env.sh"  # BASE_IMAGE, for Worker pods' init container

OPERATOR_NAMESPACE=kubeflow
OPERATOR_SECRET=training-operator-webhook-cert
OPERATOR_ROTATOR_CERT_DIR=/tmp/k8s-webhook-server/serving-certs

operator_pid() {
  local pid
  pid=$(cat "$OPERATOR_DIR/pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

issue_operator_certs() {
  local certs="$OPERATOR_DIR/certs"
  [ -s "$certs/tls.crt" ] && return 0
  mkdir -p "$certs"
  (
    cd "$certs"
    openssl genrsa -traditional -out ca.key 2048
    openssl req -x509 -new -key ca.key -days 3650 -subj "/O=training-operator/CN=training-operator-ca" \
      -addext "subjectAltName=DNS:training-operator-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,digitalSignature" -out ca.crt
    openssl genrsa -traditional -out tls.key 2048
    openssl req -new -key tls.key -subj "/CN=training-operator.$OPERATOR_NAMESPACE.svc" -out tls.csr
    printf 'subjectAltName=DNS:training-operator.%s.svc\nextendedKeyUsage=serverAuth\n' "$OPERATOR_NAMESPACE" >tls.ext
    openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile tls.ext -out tls.crt
    rm -f tls.csr tls.ext ca.srl
  ) >"$OPERATOR_DIR/certs.log" 2>&1
}

install_operator_certs() {
  local certs="$OPERATOR_DIR/certs" dir
  kc create namespace "$OPERATOR_NAMESPACE" --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc -n "$OPERATOR_NAMESPACE" create secret generic "$OPERATOR_SECRET" \
    --from-file="$certs/ca.crt" --from-file="$certs/ca.key" --from-file="$certs/tls.crt" --from-file="$certs/tls.key" \
    --dry-run=client -o yaml | kc apply -f - >/dev/null
  for dir in "$OPERATOR_DIR/tmp/k8s-webhook-server/serving-certs" "$OPERATOR_ROTATOR_CERT_DIR"; do
    mkdir -p "$dir"
    cp "$certs/tls.crt" "$certs/tls.key" "$certs/ca.crt" "$dir/"
  done
}

# The init container training-operator gives Worker pods waits until the master's Service name resolves.
# Its default (alpine:3.10 running nslookup) cannot be pulled here; the project's Debian base image can
# wait with getent instead. Same template fields as the default (image, tries, master address).
write_init_container_template() {
  cat >"$1" <<'YAML'
- name: init-pytorch
  image: {{.InitContainerImage}}
  imagePullPolicy: IfNotPresent
  resources:
    limits:
      cpu: 100m
      memory: 20Mi
    requests:
      cpu: 50m
      memory: 10Mi
  command: ['sh', '-c', 'for i in $(seq {{.MaxTries}}); do getent hosts {{.MasterAddr}} && exit 0; echo waiting for master; sleep 2; done; exit 1']
YAML
}

start_training_operator() {
  [ "${SPECFORGE_TRAINING_OPERATOR:-1}" != 0 ] || return 0  # a cluster with only JobSet (e2e)
  if operator_pid >/dev/null; then
    return 0
  fi
  mkdir -p "$OPERATOR_DIR/tmp"
  issue_operator_certs
  kc apply --server-side --force-conflicts -f "$PYTORCHJOB_CRD" >/dev/null
  install_operator_certs
  local probe_port metrics_port webhook_port
  read -r probe_port metrics_port webhook_port < <(free_ports 3)
  echo "$probe_port" >"$OPERATOR_DIR/probe-port"
  write_init_container_template "$OPERATOR_DIR/init-container.yaml"
  TMPDIR="$OPERATOR_DIR/tmp" MY_POD_NAMESPACE="$OPERATOR_NAMESPACE" KUBECONFIG="$CLUSTER_KUBECONFIG" \
    setsid "$BIN_DIR/training-operator" --enable-scheme=pytorchjob \
    --health-probe-bind-address="127.0.0.1:$probe_port" --metrics-bind-address="127.0.0.1:$metrics_port" \
    --webhook-server-port="$webhook_port" --leader-elect=false \
    --pytorch-init-container-image="$BASE_IMAGE" \
    --pytorch-init-container-template-file="$OPERATOR_DIR/init-container.yaml" \
    </dev/null >>"$OPERATOR_DIR/training-operator.log" 2>&1 &
  echo $! >"$OPERATOR_DIR/pid"
  wait_operator_ready "$probe_port"
}

wait_operator_ready() {
  local probe_port=$1 deadline=$((SECONDS + 60))
  until python3 - "$probe_port" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2)
PY
  do
    if ! operator_pid >/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "error: training-operator did not become ready; last log lines ($OPERATOR_DIR/training-operator.log):" >&2
      tail -n 20 "$OPERATOR_DIR/training-operator.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

stop_training_operator() {
  local pid
  if pid=$(operator_pid); then
    kill "$pid"
    wait_for_exit "$pid"
  fi
  rm -f "$OPERATOR_DIR/pid"
}
