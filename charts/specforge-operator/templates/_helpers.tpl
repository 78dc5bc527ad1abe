{{/* Name of the chart, overridable, cut to the 63 characters a label value allows. */}}
{{- define "specforge-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: fullnameOverride, else "<release>-<name>" unless the release already contains the name. */}}
{{- define "specforge-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "specforge-operator.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that never change for a release: what selectors use. */}}
{{- define "specforge-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "specforge-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The recommended app.kubernetes.io labels on every object of the chart. */}}
{{- define "specforge-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "specforge-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: specforge-k8s
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "specforge-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "specforge-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image reference; the tag defaults to the chart's appVersion. */}}
{{- define "specforge-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* True (non-empty) when the operator is restricted to the namespaces in watch.namespaces. */}}
{{- define "specforge-operator.namespaced" -}}
{{- if .Values.watch.namespaces }}true{{ end }}
{{- end }}

{{/* Settings that cannot be expressed in values.schema.json; fail the render with a clear message. */}}
{{- define "specforge-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.peering.enabled) }}
{{- fail "replicaCount > 1 needs peering.enabled=true: without peering every replica would reconcile every run" }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.probes.port)) }}
{{- fail "metrics.port and probes.port must differ" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled=true" }}
{{- end }}
{{- end }}

{{/*
What the operator does inside a namespace it serves, verb by verb. The same rules go into the
ClusterRole (cluster-wide) or into one Role per watched namespace. Children are written by server-side
apply (patch), created once (the store password Secret) and pruned (delete) when the spec stops wanting
them; list/watch only where kopf watches or the prune step lists by the run label.
*/}}
{{- define "specforge-operator.namespacedRules" -}}
# The runs: kopf watches them and keeps its progress annotations on them.
- apiGroups: ["specforge.io"]
  resources: ["specforgeruns"]
  # delete: runPolicy.ttlSecondsAfterFinished deletes the finished run itself.
  verbs: ["get", "list", "watch", "patch", "delete"]
# Status is written by the operator; trainer pods get (a subset of) this through their own Role, which
# RBAC only lets the operator grant because it holds the same permission.
- apiGroups: ["specforge.io"]
  resources: ["specforgeruns/status"]
  verbs: ["get", "patch"]
# Children whose changes re-trigger a reconcile (watched by label).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["kubeflow.org"]
  resources: ["pytorchjobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["jobset.x-k8s.io"]
  resources: ["jobsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Children that are only applied, read back and pruned.
- apiGroups: [""]
  resources: ["services", "serviceaccounts", "persistentvolumeclaims"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "create", "patch", "delete"]
# The one Secret a run owns (its store password) is created, read and pruned by name: no list or
# watch, so the operator cannot enumerate the Secrets of the namespaces it serves. RBAC cannot narrow
# get to the names the operator makes (resourceNames are fixed at install), so restrict the namespaces
# with watch.namespaces where that matters.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "create", "patch", "delete"]
# Failed pods are listed to put the container's exit reason into the run's status.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# kopf posts events (POST only).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* Cluster-scoped reads kopf makes at start-up: the CRD list (to find the resources it serves) and the namespace list. */}}
{{- define "specforge-operator.discoveryRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}

{{/* Peering keep-alives: list/watch to see the other replicas, patch only our own peering object. */}}
{{- define "specforge-operator.peeringRules" -}}
- apiGroups: ["kopf.dev"]
  resources: [{{ .resource | quote }}]
  verbs: ["list", "watch"]
- apiGroups: ["kopf.dev"]
  resources: [{{ .resource | quote }}]
  resourceNames: [{{ .name | quote }}]
  verbs: ["get", "patch"]
{{- end }}

{{/* The operator's ServiceAccount as an RBAC subject. */}}
{{- define "specforge-operator.subjects" -}}
- kind: ServiceAccount
  name: {{ include "specforge-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}
