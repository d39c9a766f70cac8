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

{{/*
The end of a period (P20Y, P6M, P4W, P30D; values.schema.json checks the
form) added to a date, in the manager's calendar arithmetic (time.AddDate).
*/}}
{{- define "dossierguard.periodEnd" -}}
{{- $p := index . 0 -}}
{{- $n := substr 1 (sub (len $p) 1 | int) $p | atoi -}}
{{- $unit := substr (sub (len $p) 1 | int) (len $p) $p -}}
{{- $t := index . 1 -}}
{{- if eq $unit "Y" }}{{ $t.AddDate $n 0 0 | date "2006-01-02" }}
{{- else if eq $unit "M" }}{{ $t.AddDate 0 $n 0 | date "2006-01-02" }}
{{- else if eq $unit "W" }}{{ $t.AddDate 0 0 (mul 7 $n | int) | date "2006-01-02" }}
{{- else }}{{ $t.AddDate 0 0 $n | date "2006-01-02" }}
{{- end }}
{{- end }}

{{/*
The rules of the manager's statute check (compliance.ValidateStatutes) that
the schema cannot state: a minimum no longer than its maximum, compared as the
manager does, from 1 January 2000 in calendar arithmetic (so P12M equals P1Y
and P366D equals P1Y, 2000 being a leap year).
*/}}
{{- define "dossierguard.checkStatutes" -}}
{{- $ref := toDate "2006-01-02" "2000-01-01" -}}
{{- range $service, $s := .Values.retentionStatutes }}
{{- if and (kindIs "map" $s) $s.minimum $s.maximum }}
{{- $min := include "dossierguard.periodEnd" (list (toString $s.minimum) $ref) | toDate "2006-01-02" }}
{{- $max := include "dossierguard.periodEnd" (list (toString $s.maximum) $ref) | toDate "2006-01-02" }}
{{- if $min.After $max }}
{{- fail (printf "retentionStatutes.%s.minimum %s is longer than retentionStatutes.%s.maximum %s: the minimum retention must not exceed the maximum (the manager refuses such a table)" $service $s.minimum $service $s.maximum) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of the logbook's objects, and those that select its pods. */}}
{{- define "dossierguard.logbookSelectorLabels" -}}
app.kubernetes.io/name: {{ include "dossierguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: logbook
{{- end }}
{{- define "dossierguard.logbookLabels" -}}
helm.sh/chart: {{ include "dossierguard.chart" . }}
{{ include "dossierguard.logbookSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: dossierguard
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* A map of labels as one key=value,... flag value, sorted by key. */}}
{{- define "dossierguard.labelsFlag" -}}
{{- $pairs := list }}
{{- range $k, $v := . }}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* The logbook's pod labels (its selector labels) as a flag value. */}}
{{- define "dossierguard.logbookPodLabelsFlag" -}}
{{- include "dossierguard.labelsFlag" (include "dossierguard.logbookSelectorLabels" . | fromYaml) }}
{{- end }}

{{/* The logbook URL the injected proxies ship to: logbook.url, else the
Service of the logbook when the chart deploys it, else none. */}}
{{- define "dossierguard.logbookURL" -}}
{{- if .Values.logbook.url }}
{{- .Values.logbook.url }}
{{- else if .Values.logbook.enabled }}
{{- printf "http://dossierguard-logbook.%s.svc:4318" .Release.Namespace }}
{{- end }}
{{- end }}
