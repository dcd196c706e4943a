{{/*
TLS (values `tls`): which Secret each component mounts, where, and the flags that use it.
A Secret is kubernetes.io/tls with ca.crt, as cert-manager's CA issuers write it:
  router   <fullname>-router-tls  HTTPS + gRPC TLS on its APIs; its client certificate
                                   for workers (mTLS); the operator's too, for its drains
  workers  <fullname>-worker-tls  every Triskel worker pod (mounted by the operator)
With tls.existingSecret, that one Secret everywhere.
*/}}
{{- define "triskel.tlsRouterSecret" -}}
{{- .Values.tls.existingSecret | default (printf "%s-tls" (include "triskel.componentName" (list . "router"))) -}}
{{- end -}}

{{- define "triskel.tlsWorkerSecret" -}}
{{- .Values.tls.existingSecret | default (printf "%s-tls" (include "triskel.componentName" (list . "worker"))) -}}
{{- end -}}

{{- define "triskel.tlsDir" -}}/etc/triskel/tls{{- end -}}

{{/* Refuses enabled TLS without exactly one source of certificates. */}}
{{- define "triskel.tlsCheck" -}}
{{- with .Values.tls }}
{{- if and .enabled (eq (empty .existingSecret) (empty .certManager.issuerRef.name)) }}
{{- fail "tls: with enabled, set one of certManager.issuerRef.name and existingSecret" }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The client flags of a caller of the workers (router, operator), as args lines. */}}
{{- define "triskel.workerTlsArgs" -}}
- --worker-tls-cert-file={{ include "triskel.tlsDir" . }}/tls.crt
- --worker-tls-key-file={{ include "triskel.tlsDir" . }}/tls.key
- --worker-tls-ca-file={{ include "triskel.tlsDir" . }}/ca.crt
- --worker-tls-server-name={{ .Values.tls.workerServerName }}
{{- end -}}

{{/* The router Secret as a volume named tls: whole, so renewals reach the files. */}}
{{- define "triskel.tlsVolume" -}}
- name: tls
  secret:
    secretName: {{ include "triskel.tlsRouterSecret" . }}
{{- end -}}

{{- define "triskel.tlsMount" -}}
- name: tls
  mountPath: {{ include "triskel.tlsDir" . }}
  readOnly: true
{{- end -}}
