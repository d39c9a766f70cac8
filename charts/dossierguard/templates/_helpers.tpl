{{/*
Names are fixed, not derived from the release name: the operator is one per
cluster (its CRDs, its MutatingWebhookConfiguration and its leader-election
Lease are cluster-wide facts), and the manager finds its webhook Service,
Secret and configuration by these names.
*/}}
{{- define "dossierguard.name" -}}dossierguard{{- end }}
{{- define "dossierguard.serviceAccountName" -}}dossierguard-manager{{- end }}
{{- define "dossierguard.webhookServiceName" -}}dossierguard-webhook{{- end }}
{{- define "dossierguard.webhookSecretName" -}}dossierguard-webhook-tls{{- end }}
{{- define "dossierguard.webhookConfigName" -}}dossierguard-sidecar-injector{{- end }}
{{- define "dossierguard.validatingConfigName" -}}dossierguard-pod-guard{{- end }}
{{- define "dossierguard.proxyIssuerName" -}}dossierguard-proxy-selfsigned{{- end }}
{{- define "dossierguard.certificateName" -}}dossierguard-webhook{{- end }}
{{- define "dossierguard.statutesConfigMapName" -}}dossierguard-retention-statutes{{- end }}

{{- define "dossierguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "dossierguard.labels" -}}
helm.sh/chart: {{ include "dossierguard.chart" . }}
{{ include "dossierguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: dossierguard
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the manager's pods. */}}
{{- define "dossierguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dossierguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{/* The operator image: repository@digest, or repository:tag (appVersion by default). */}}
{{- define "dossierguard.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{- define "dossierguard.sweeperImage" -}}
{{ .Values.sweeper.image | default (include "dossierguard.image" .) }}
{{- end }}

{{/* operator or cert-manager: the value of --webhook-cert-management. */}}
{{- define "dossierguard.certManagement" -}}
{{ ternary "cert-manager" "operator" .Values.certManager.enabled }}
{{- end }}

{{/* Path of the retention statutes file in the pod. */}}
{{- define "dossierguard.statutesPath" -}}/etc/dossierguard/retention-statutes.yaml{{- end }}
