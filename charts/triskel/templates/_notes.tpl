{{/* The install notes; NOTES.txt includes them, and the chart tests render them through a probe template. */}}
{{- define "triskel.notes" -}}
{{- $router := include "triskel.componentName" (list . "router") -}}
Triskel {{ .Chart.AppVersion }} is installed in namespace {{ .Release.Namespace }}:
  operator  deployment/{{ include "triskel.componentName" (list . "operator") }} (watching {{ if .Values.operator.watchNamespaces }}{{ join ", " .Values.operator.watchNamespaces }}{{ else }}all namespaces{{ end }})
  router    service/{{ $router }} (HTTP {{ .Values.router.service.httpPort }}, gRPC {{ .Values.router.service.grpcPort }}){{ if .Values.redis.enabled }}
  redis     service/{{ include "triskel.componentName" (list . "redis") }}{{ end }}

Next, create mock worker pools and a serving graph:

  kubectl apply -f manifests/examples/pd-mock.yaml

and, once `kubectl get wp,sg` shows them ready, send a request through the router:

  kubectl --namespace {{ .Release.Namespace }} port-forward svc/{{ $router }} 8080:{{ .Values.router.service.httpPort }} &
  curl -s http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \
    -d '{"model":"llama-3.1-8b","messages":[{"role":"user","content":"Hello"}],"max_tokens":8}'
{{- end -}}
