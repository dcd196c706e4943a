{{/*
Names and labels shared by every template.

Resource names are "<fullname>-<component>" (e.g. "triskel-router"); fullname stops at
52 characters so the longest suffix ("-operator") still fits a 63-character DNS label.
Cluster-scoped names (ClusterRoles) also carry the namespace: two releases of the same
name in different namespaces must not share them.
*/}}

{{- define "triskel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "triskel.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>"; call with (list $ "router"). */}}
{{- define "triskel.componentName" -}}
{{- printf "%s-%s" (include "triskel.fullname" (index . 0)) (index . 1) -}}
{{- end -}}

{{/*
"<release namespace>-<fullname>-<component>", for ClusterRoles and for Roles in watched
namespaces, which several releases may share; call with (list $ "operator").
*/}}
{{- define "triskel.qualifiedName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s-%s" $root.Release.Namespace (include "triskel.fullname" $root) (index . 1) -}}
{{- end -}}

{{/* Labels that select one component's pods; call with (list $ "router"). */}}
{{- define "triskel.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "triskel.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* A label map as "k=v,k2=v2" (keys sorted), as the operator's label flags take it. */}}
{{- define "triskel.labelList" -}}
{{- $pairs := list -}}
{{- range $key, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Every label of one component's objects; call with (list $ "router"). */}}
{{- define "triskel.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "triskel.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: triskel
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- end -}}

{{- define "triskel.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The Secret holding Redis' password: redis.auth.existingSecret, else the chart's. */}}
{{- define "triskel.redisSecretName" -}}
{{- .Values.redis.auth.existingSecret | default (include "triskel.componentName" (list . "redis")) -}}
{{- end -}}

{{/* Where Redis and the routers mount the password (file `password`). */}}
{{- define "triskel.redisAuthDir" -}}/etc/triskel/redis-auth{{- end -}}

{{/*
The password's volume: the Secret's key as the file `password`. Readable by others (0444):
the pods run as non-root users without fsGroup, and each runs one container only.
*/}}
{{- define "triskel.redisAuthVolume" -}}
secret:
  secretName: {{ include "triskel.redisSecretName" . }}
  items:
    - key: {{ .Values.redis.auth.existingSecretKey }}
      path: password
  defaultMode: 0444
{{- end -}}

{{/* The Redis URL routers share state through (only when redis.enabled). */}}
{{- define "triskel.redisUrl" -}}
{{- printf "redis://%s:6379" (include "triskel.componentName" (list . "redis")) -}}
{{- end -}}

{{/*
The ConfigMap the operator writes the routers' configuration to (release namespace), and
the key holding it: fixed names shared with triskel.common.router_cluster.
*/}}
{{- define "triskel.routerConfigMap" -}}triskel-router-config{{- end -}}
{{- define "triskel.routerConfigKey" -}}router-config.json{{- end -}}

{{/* Non-root, no privilege escalation, read-only root: for the Triskel containers. */}}
{{- define "triskel.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "triskel.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* nodeSelector, tolerations, affinity and pull secrets of a pod; call with (list $ .Values.router). */}}
{{- define "triskel.podPlacement" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
A component's RBAC in the namespaces it handles: with operator.watchNamespaces, a Role and
RoleBinding in each; without, one ClusterRole and ClusterRoleBinding. The subject is the
component's ServiceAccount. Call with (list $ "router" (include "triskel.routerRules" $)).
*/}}
{{- define "triskel.scopedRbac" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $rules := index . 2 -}}
{{- $name := include "triskel.qualifiedName" (list $root $component) -}}
{{- $namespaces := $root.Values.operator.watchNamespaces | default (list "") -}}
{{- range $namespaces }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ if . }}Role{{ else }}ClusterRole{{ end }}
metadata:
  name: {{ $name }}
  {{- with . }}
  namespace: {{ . }}
  {{- end }}
  labels:
    {{- include "triskel.labels" (list $root $component) | nindent 4 }}
rules:
  {{- $rules | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ if . }}RoleBinding{{ else }}ClusterRoleBinding{{ end }}
metadata:
  name: {{ $name }}
  {{- with . }}
  namespace: {{ . }}
  {{- end }}
  labels:
    {{- include "triskel.labels" (list $root $component) | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {{ if . }}Role{{ else }}ClusterRole{{ end }}
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ include "triskel.componentName" (list $root $component) }}
    namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- end -}}

{{/*
Router processes per pod: router.processes, or with 0 one per core of the CPU request
(rounded up: "500m" is 1, "1500m" 2, "2" 2). Refused at render when auth would need
Redis to share its buckets among them and Redis is off.
*/}}
{{- define "triskel.routerProcesses" -}}
{{- $processes := int .Values.router.processes -}}
{{- if eq $processes 0 -}}
{{- $cpu := toString ((.Values.router.resources.requests | default dict).cpu | default "1") -}}
{{- if hasSuffix "m" $cpu -}}
{{- $processes = div (add (atoi (trimSuffix "m" $cpu)) 999) 1000 -}}
{{- else -}}
{{- $processes = int (ceil (float64 $cpu)) -}}
{{- end -}}
{{- end -}}
{{- $processes = max $processes 1 -}}
{{- $auth := or .Values.router.auth.existingSecret .Values.router.auth.oidc.issuer -}}
{{- if and (gt (int $processes) 1) $auth (not .Values.redis.enabled) -}}
{{- fail (printf "router: %d processes with router.auth need redis.enabled (rate limits and key grants are shared there); or set router.processes: 1" (int $processes)) -}}
{{- end -}}
{{- $processes -}}
{{- end -}}
