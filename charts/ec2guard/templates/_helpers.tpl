{{/*
Names, labels, images, the command lines of both components, and the checks that make
`helm install` fail with a clear message instead of a crash-looping pod.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "ec2guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every resource name: fullnameOverride, else release name (+ chart name). */}}
{{- define "ec2guard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "ec2guard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. Call with (dict "ctx" $ "component" "webhook"). */}}
{{- define "ec2guard.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ include "ec2guard.chart" $ctx }}
{{ include "ec2guard.selectorLabels" . }}
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: ec2guard
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of a component. Call with (dict "ctx" $ "component" "webhook"). */}}
{{- define "ec2guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ec2guard.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* Name of the webhook's objects (Deployment, Service, ...). */}}
{{- define "ec2guard.webhook.fullname" -}}
{{- printf "%s-webhook" (include "ec2guard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of the discoverer's objects. */}}
{{- define "ec2guard.discoverer.fullname" -}}
{{- printf "%s-discoverer" (include "ec2guard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The webhook's ServiceAccount. */}}
{{- define "ec2guard.webhook.serviceAccountName" -}}
{{- if .Values.webhook.serviceAccount.create -}}
{{- default (include "ec2guard.webhook.fullname" .) .Values.webhook.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.webhook.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The discoverer's ServiceAccount: its own in deployment mode, the webhook's in sidecar mode. */}}
{{- define "ec2guard.discoverer.serviceAccountName" -}}
{{- if eq .Values.discoverer.mode "sidecar" -}}
{{- include "ec2guard.webhook.serviceAccountName" . -}}
{{- else if .Values.discoverer.serviceAccount.create -}}
{{- default (include "ec2guard.discoverer.fullname" .) .Values.discoverer.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.discoverer.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference. Call with (dict "image" .Values.webhook.image "ctx" $). */}}
{{- define "ec2guard.image" -}}
{{- $img := .image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (toString (default .ctx.Chart.AppVersion $img.tag)) -}}
{{- end -}}
{{- end -}}

{{/* The webhook's serving certificate Secret in every TLS mode. */}}
{{- define "ec2guard.webhook.tlsSecretName" -}}
{{- if .Values.tls.secretName -}}
{{- .Values.tls.secretName -}}
{{- else -}}
{{- printf "%s-tls" (include "ec2guard.webhook.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The cert-manager Certificate of the webhook. */}}
{{- define "ec2guard.webhook.certificateName" -}}
{{- include "ec2guard.webhook.fullname" . -}}
{{- end -}}

{{/* The DNS names the API server uses for the webhook Service, as a list. */}}
{{- define "ec2guard.webhook.dnsNames" -}}
{{- $svc := include "ec2guard.webhook.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson -}}
{{- end -}}

{{/*
ec2Condition is the CEL expression of the default matchCondition "ec2-upstreams-only": only
Upstreams with an EC2 spec (spec.awsEc2 or the legacy spec.upstreamSpec.awsEc2, also in the proto
spelling aws_ec2 / upstream_spec) in the new object (CREATE, UPDATE) or the old one (UPDATE) are sent
to ec2guard. Kubernetes, static, Lambda... Upstreams never reach the webhooks, so an outage of
ec2guard cannot block them.
*/}}
{{- define "ec2guard.webhook.ec2Condition" -}}
{{- $spec := "has(%[1]s.spec) && (has(%[1]s.spec.awsEc2) || has(%[1]s.spec.aws_ec2) || (has(%[1]s.spec.upstreamSpec) && (has(%[1]s.spec.upstreamSpec.awsEc2) || has(%[1]s.spec.upstreamSpec.aws_ec2))) || (has(%[1]s.spec.upstream_spec) && (has(%[1]s.spec.upstream_spec.awsEc2) || has(%[1]s.spec.upstream_spec.aws_ec2))))" -}}
{{- printf "(object != null && %s) || (oldObject != null && %s)" (printf $spec "object") (printf $spec "oldObject") -}}
{{- end -}}

{{/*
namespaceSelector of both webhooks: webhook.admission.namespaceSelector plus a NotIn expression on
kubernetes.io/metadata.name for webhook.admission.excludeNamespaces and, with
excludeReleaseNamespace, the release namespace.
*/}}
{{- define "ec2guard.webhook.namespaceSelector" -}}
{{- $a := .Values.webhook.admission -}}
{{- $sel := deepCopy ($a.namespaceSelector | default dict) -}}
{{- $excluded := $a.excludeNamespaces | default list -}}
{{- if $a.excludeReleaseNamespace -}}
{{- $excluded = append $excluded .Release.Namespace -}}
{{- end -}}
{{- $excluded = $excluded | uniq -}}
{{- if $excluded -}}
{{- $exprs := $sel.matchExpressions | default list -}}
{{- $exprs = append $exprs (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" $excluded) -}}
{{- $_ := set $sel "matchExpressions" $exprs -}}
{{- end -}}
{{- toYaml $sel -}}
{{- end -}}

{{/* Where the webhook reads its serving certificate (--cert-dir). */}}
{{- define "ec2guard.webhook.certDir" -}}
/var/run/ec2guard/tls
{{- end -}}

{{/* The Lease of the webhook replicas' certificate rotator (tls.selfManaged). */}}
{{- define "ec2guard.webhook.certLeaseName" -}}
{{- printf "%s-cert-rotation" (include "ec2guard.webhook.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The discoverer's leader election Lease name. */}}
{{- define "ec2guard.discoverer.leaseName" -}}
{{- default (include "ec2guard.discoverer.fullname" .) .Values.discoverer.leaderElection.id -}}
{{- end -}}

{{/*
durationSeconds converts a Go duration string ("2s", "1m30s", "500ms") to seconds (a float, as a
string), failing with the value's name when it is not one. Call with
(dict "name" "webhook.iam.deadline" "value" .Values.webhook.iam.deadline).
*/}}
{{- define "ec2guard.durationSeconds" -}}
{{- $d := toString .value -}}
{{- if eq $d "0" -}}
0
{{- else -}}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$" $d) -}}
{{- fail (printf "%s: %q is not a Go duration (e.g. 2s, 500ms, 1m30s)" .name $d) -}}
{{- end -}}
{{- $unit := dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" $d -1 -}}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 -}}
{{- $u := regexReplaceAll "^[0-9]+(\\.[0-9]+)?" . "" -}}
{{- $total = addf $total (mulf $n (get $unit $u)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
{{- end -}}

{{/*
enforcementFlags maps the keys of webhook.enforcement to the webhook's --enforce-CHECK flags.
The chart test runs the real webhook binary over the rendered flags, so a renamed flag fails it.
*/}}
{{- define "ec2guard.webhook.enforcementFlags" -}}
{{- dict "spec" "enforce-spec" "secret" "enforce-secret" "secretAccess" "enforce-secret-access" "credentials" "enforce-credentials" "iamDeny" "enforce-iam-deny" "iamUnknown" "enforce-iam-unknown" "permissiveNoFilters" "enforce-permissive-no-filters" | toJson -}}
{{- end -}}

{{/*
commonArgs are the flags both binaries share with the same name: the Kubernetes client's rate
limits, HTTPS metrics, and the namespaces whose Upstreams may use the pod's own AWS identity.
--metrics-secure and --pod-identity-namespaces are passed only when set, so the chart also runs
binaries that predate them with their defaults. Call with (dict "ctx" $ "c" .Values.webhook).
*/}}
{{- define "ec2guard.commonArgs" -}}
{{- $c := .c }}
- {{ printf "--kube-api-qps=%v" $c.kubeAPI.qps | quote }}
- {{ printf "--kube-api-burst=%d" (int $c.kubeAPI.burst) | quote }}
{{- if .ctx.Values.metrics.secure }}
- "--metrics-secure=true"
{{- end }}
{{- with $c.podIdentityNamespaces }}
- {{ printf "--pod-identity-namespaces=%s" (join "," .) | quote }}
{{- end }}
{{- end -}}

{{/* The webhook's command line, as a YAML list. */}}
{{- define "ec2guard.webhook.args" -}}
{{- $w := .Values.webhook -}}
- {{ printf "--webhook-port=%d" (int $w.port) | quote }}
- {{ printf "--cert-dir=%s" (include "ec2guard.webhook.certDir" .) | quote }}
- "--cert-name=tls.crt"
- "--key-name=tls.key"
- {{ printf "--enable-http2=%t" $w.enableHTTP2 | quote }}
- {{ printf "--metrics-bind-address=:%d" (int $w.metricsPort) | quote }}
- {{ printf "--health-probe-bind-address=:%d" (int $w.probePort) | quote }}
{{- include "ec2guard.commonArgs" (dict "ctx" . "c" $w) }}
{{- with $w.secretNamespaces }}
- {{ printf "--secret-namespaces=%s" (join "," .) | quote }}
{{- end }}
{{- with $w.secretLabelSelector }}
- {{ printf "--secret-label-selector=%s" . | quote }}
{{- end }}
{{- $flags := include "ec2guard.webhook.enforcementFlags" . | fromJson }}
{{- range $key := keys $flags | sortAlpha }}
- {{ printf "--%s=%s" (get $flags $key) (index $w.enforcement $key) | quote }}
{{- end }}
- {{ printf "--iam-deadline=%s" $w.iam.deadline | quote }}
- {{ printf "--iam-cache-ttl=%s" $w.iam.cacheTTL | quote }}
- {{ printf "--iam-unknown-ttl=%s" $w.iam.unknownTTL | quote }}
- {{ printf "--iam-sources=%s" (join "," $w.iam.sources) | quote }}
{{- /* --iam-read-with, the discoverer's flag: iam.reader auditor, or upstream with iam.auditor on. */}}
{{- $readWith := "upstream" -}}
{{- if eq $w.iam.reader "auditor" }}{{ $readWith = "auditor" }}{{ else if $w.iam.auditor }}{{ $readWith = "upstream-then-auditor" }}{{ end }}
- {{ printf "--iam-read-with=%s" $readWith | quote }}
- {{ printf "--iam-collection=%s" $w.iam.collection | quote }}
{{- with $w.awsEndpoint }}
- {{ printf "--aws-endpoint=%s" . | quote }}
{{- end }}
- {{ printf "--log-level=%s" $w.logLevel | quote }}
- {{ printf "--log-format=%s" $w.logFormat | quote }}
- {{ printf "--shutdown-timeout=%s" $w.gracefulShutdownTimeout | quote }}
{{- with .Values.tls.selfManaged }}
{{- if .enabled }}
- "--cert-rotation=true"
- {{ printf "--cert-rotation-secret=%s/%s" $.Release.Namespace (include "ec2guard.webhook.tlsSecretName" $) | quote }}
- {{ printf "--cert-rotation-webhook-configuration=%s" (include "ec2guard.fullname" $) | quote }}
- {{ printf "--cert-rotation-dns-name=%s.%s.svc" (include "ec2guard.webhook.fullname" $) $.Release.Namespace | quote }}
- {{ printf "--cert-rotation-ca-validity=%s" .caValidity | quote }}
- {{ printf "--cert-rotation-server-validity=%s" .serverValidity | quote }}
- {{ printf "--cert-rotation-lookahead=%s" .lookahead | quote }}
- {{ printf "--cert-rotation-check-interval=%s" .checkInterval | quote }}
- {{ printf "--leader-election-namespace=%s" $.Release.Namespace | quote }}
- {{ printf "--leader-election-id=%s" (include "ec2guard.webhook.certLeaseName" $) | quote }}
{{- end }}
{{- end }}
{{- range $w.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The discoverer's command line, as a YAML list. */}}
{{- define "ec2guard.discoverer.args" -}}
{{- $d := .Values.discoverer -}}
- {{ printf "--metrics-bind-address=:%d" (int $d.metricsPort) | quote }}
- {{ printf "--health-probe-bind-address=:%d" (int $d.probePort) | quote }}
{{- include "ec2guard.commonArgs" (dict "ctx" . "c" $d) }}
- {{ printf "--leader-elect=%t" (and $d.leaderElection.enabled (not $d.sharding.enabled)) | quote }}
- {{ printf "--leader-election-namespace=%s" .Release.Namespace | quote }}
- {{ printf "--leader-election-id=%s" (include "ec2guard.discoverer.leaseName" .) | quote }}
- {{ printf "--interval=%s" $d.interval | quote }}
- {{ printf "--jitter=%v" $d.jitter | quote }}
- {{ printf "--group-timeout=%s" $d.groupTimeout | quote }}
- {{ printf "--max-backoff=%s" $d.maxBackoff | quote }}
- {{ printf "--max-concurrent-refreshes=%d" (int $d.maxConcurrentRefreshes) | quote }}
- {{ printf "--publish=%s" $d.publish | quote }}
- {{ printf "--service-type=%s" $d.serviceType | quote }}
{{- if $d.sharding.enabled }}
- "--sharding=leases"
- {{ printf "--shard-group=%s" (include "ec2guard.discoverer.fullname" .) | quote }}
- {{ printf "--shard-namespace=%s" .Release.Namespace | quote }}
- {{ printf "--shard-lease-duration=%s" $d.sharding.leaseDuration | quote }}
- {{ printf "--shard-renew-interval=%s" $d.sharding.renewInterval | quote }}
{{- end }}
{{- with $d.portTag }}
- {{ printf "--port-tag=%s" . | quote }}
{{- end }}
- {{ printf "--zone-hints=%t" $d.zoneHints | quote }}
- {{ printf "--annotation-heartbeat=%s" $d.annotationHeartbeat | quote }}
- {{ printf "--reports=%t" $d.reports | quote }}
{{- if $d.discoverFromTags.enabled }}
- "--discover-from-tags=true"
- {{ printf "--discover-secret=%s" $d.discoverFromTags.secret | quote }}
- {{ printf "--discover-regions=%s" (join "," $d.discoverFromTags.regions) | quote }}
{{- with $d.discoverFromTags.namespace }}
- {{ printf "--discover-namespace=%s" . | quote }}
{{- end }}
{{- with $d.discoverFromTags.targetNamespaces }}
- {{ printf "--discover-target-namespaces=%s" (join "," .) | quote }}
{{- end }}
- {{ printf "--discover-max-upstreams=%d" (int $d.discoverFromTags.maxUpstreams) | quote }}
{{- end }}
- {{ printf "--iam-audit=%t" $d.iam.audit | quote }}
- {{ printf "--iam-read-with=%s" $d.iam.readWith | quote }}
- {{ printf "--iam-policy-ttl=%s" $d.iam.policyTTL | quote }}
{{- with $d.awsEndpoint }}
- {{ printf "--aws-endpoint=%s" . | quote }}
{{- end }}
- {{ printf "--log-level=%s" $d.logLevel | quote }}
- {{ printf "--log-format=%s" $d.logFormat | quote }}
- {{ printf "--shutdown-timeout=%s" $d.shutdownTimeout | quote }}
{{- range $d.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
topologySpread renders topologySpreadConstraints, giving entries without a labelSelector the
component's selector labels. Call with (dict "ctx" $ "component" "webhook" "constraints" list).
*/}}
{{- define "ec2guard.topologySpread" -}}
{{- $sel := include "ec2guard.selectorLabels" (dict "ctx" .ctx "component" .component) | fromYaml -}}
{{- $out := list -}}
{{- range .constraints -}}
{{- $c := deepCopy . -}}
{{- if not (hasKey $c "labelSelector") -}}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $sel) -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The discoverer container (its own Deployment, or a sidecar in the webhook pods). */}}
{{- define "ec2guard.discoverer.container" -}}
{{- $d := .Values.discoverer -}}
- name: discoverer
  image: {{ include "ec2guard.image" (dict "image" $d.image "ctx" .) | quote }}
  imagePullPolicy: {{ $d.image.pullPolicy }}
  args:
    {{- include "ec2guard.discoverer.args" . | nindent 4 }}
  {{- if or $d.env $d.sharding.enabled }}
  env:
    {{- if $d.sharding.enabled }}
    # The shard member's identity (--shard-identity defaults to $POD_NAME).
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    {{- end }}
    {{- with $d.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  ports:
    - name: dsc-metrics
      containerPort: {{ $d.metricsPort }}
      protocol: TCP
    - name: dsc-probes
      containerPort: {{ $d.probePort }}
      protocol: TCP
  # /readyz: the caches synced; on every replica, leader or stand-by, so rolling updates proceed.
  readinessProbe:
    httpGet:
      path: /readyz
      port: dsc-probes
    periodSeconds: 10
  livenessProbe:
    httpGet:
      path: /healthz
      port: dsc-probes
    initialDelaySeconds: 15
    periodSeconds: 20
    failureThreshold: 3
  securityContext:
    {{- toYaml $d.securityContext | nindent 4 }}
  resources:
    {{- toYaml $d.resources | nindent 4 }}
  volumeMounts:
    - name: discoverer-tmp
      mountPath: /tmp
{{- end -}}

{{/*
validate fails the render with a clear message for combinations the schema cannot express.
Included once, from the webhook Deployment.
*/}}
{{- define "ec2guard.validate" -}}
{{- $w := .Values.webhook -}}
{{- $deadline := include "ec2guard.durationSeconds" (dict "name" "webhook.iam.deadline" "value" $w.iam.deadline) | float64 -}}
{{- $timeout := $w.admission.timeoutSeconds | float64 -}}
{{- if le $timeout $deadline -}}
{{- fail (printf "webhook.admission.timeoutSeconds (%v) must be greater than webhook.iam.deadline (%s): the API server would give up on the webhook before ec2guard gives up on AWS. Raise timeoutSeconds (at most 30) or lower the deadline." $w.admission.timeoutSeconds $w.iam.deadline) -}}
{{- end -}}
{{- range $name, $v := dict "webhook.iam.cacheTTL" $w.iam.cacheTTL "webhook.iam.unknownTTL" $w.iam.unknownTTL "webhook.gracefulShutdownTimeout" $w.gracefulShutdownTimeout -}}
{{- $_ := include "ec2guard.durationSeconds" (dict "name" $name "value" $v) -}}
{{- end -}}
{{- if and (eq $w.iam.reader "auditor") (not $w.iam.auditor) -}}
{{- fail "webhook.iam.reader=auditor needs webhook.iam.auditor=true (the pod's own AWS identity reads IAM)" -}}
{{- end -}}
{{- if and (eq $w.iam.collection "account-snapshot") (not $w.iam.auditor) -}}
{{- fail "webhook.iam.collection=account-snapshot needs webhook.iam.auditor=true (the snapshot is read with the pod's own AWS identity)" -}}
{{- end -}}
{{- if and .Values.tls.selfManaged.enabled (or .Values.certManager.enabled .Values.tls.secretName) -}}
{{- fail "tls.selfManaged.enabled is a TLS mode of its own: unset certManager.enabled and tls.secretName" -}}
{{- end -}}
{{- if .Values.tls.selfManaged.enabled -}}
{{- $sm := .Values.tls.selfManaged -}}
{{- $secs := dict -}}
{{- range $k := list "caValidity" "serverValidity" "lookahead" "checkInterval" -}}
{{- $_ := set $secs $k (include "ec2guard.durationSeconds" (dict "name" (printf "tls.selfManaged.%s" $k) "value" (index $sm $k)) | float64) -}}
{{- end -}}
{{- if ge $secs.lookahead $secs.serverValidity -}}
{{- fail (printf "tls.selfManaged.lookahead (%s) must be shorter than tls.selfManaged.serverValidity (%s)" $sm.lookahead $sm.serverValidity) -}}
{{- end -}}
{{- if gt $secs.serverValidity $secs.caValidity -}}
{{- fail (printf "tls.selfManaged.serverValidity (%s) must not exceed tls.selfManaged.caValidity (%s)" $sm.serverValidity $sm.caValidity) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.certManager.enabled .Values.tls.secretName -}}
{{- fail "certManager.enabled and tls.secretName are two different TLS modes: set one of them (or neither, for a certificate generated by the chart)" -}}
{{- end -}}
{{- if and .Values.tls.secretName (not .Values.tls.caBundle) -}}
{{- fail (printf "tls.secretName=%s needs tls.caBundle: the PEM of the CA that signed its certificate, which the API server must trust" .Values.tls.secretName) -}}
{{- end -}}
{{- if and .Values.tls.caBundle (not .Values.tls.secretName) -}}
{{- fail "tls.caBundle is set but tls.secretName is not: name the kubernetes.io/tls Secret holding the certificate that CA signed" -}}
{{- end -}}
{{- if and .Values.tls.caBundle (not (contains "-----BEGIN CERTIFICATE-----" .Values.tls.caBundle)) -}}
{{- fail "tls.caBundle must be PEM text (-----BEGIN CERTIFICATE----- ...), not base64 of it" -}}
{{- end -}}
{{- $d := .Values.discoverer -}}
{{- if $d.enabled -}}
{{- $interval := include "ec2guard.durationSeconds" (dict "name" "discoverer.interval" "value" $d.interval) | float64 -}}
{{- $backoff := include "ec2guard.durationSeconds" (dict "name" "discoverer.maxBackoff" "value" $d.maxBackoff) | float64 -}}
{{- if and (gt $backoff 0.0) (lt $backoff $interval) -}}
{{- fail (printf "discoverer.maxBackoff (%s) must be 0s (automatic) or at least discoverer.interval (%s)" $d.maxBackoff $d.interval) -}}
{{- end -}}
{{- range $name, $v := dict "discoverer.groupTimeout" $d.groupTimeout "discoverer.annotationHeartbeat" $d.annotationHeartbeat "discoverer.iam.policyTTL" $d.iam.policyTTL "discoverer.shutdownTimeout" $d.shutdownTimeout -}}
{{- $_ := include "ec2guard.durationSeconds" (dict "name" $name "value" $v) -}}
{{- end -}}
{{- if $d.discoverFromTags.enabled -}}
{{- if not (regexMatch "^[^/]+/[^/]+$" (toString $d.discoverFromTags.secret)) -}}
{{- fail (printf "discoverer.discoverFromTags.secret %q must be namespace/name of a Gloo AWS Secret (required by discoverer.discoverFromTags.enabled)" (toString $d.discoverFromTags.secret)) -}}
{{- end -}}
{{- if not $d.discoverFromTags.regions -}}
{{- fail "discoverer.discoverFromTags.regions: at least one region is required by discoverer.discoverFromTags.enabled" -}}
{{- end -}}
{{- end -}}
{{- if and (gt (int $d.replicas) 1) (not $d.leaderElection.enabled) (eq $d.mode "deployment") -}}
{{- fail (printf "discoverer.replicas=%d needs discoverer.leaderElection.enabled: without it every replica discovers and writes" (int $d.replicas)) -}}
{{- end -}}
{{- if and (eq $d.mode "sidecar") (gt (int $w.replicas) 1) (not $d.leaderElection.enabled) -}}
{{- fail "discoverer.mode=sidecar with webhook.replicas > 1 needs discoverer.leaderElection.enabled" -}}
{{- end -}}
{{- if and (eq $d.mode "sidecar") (has (int $d.metricsPort) (list (int $w.port) (int $w.metricsPort) (int $w.probePort))) -}}
{{- fail (printf "discoverer.metricsPort %d collides with a webhook port in sidecar mode" (int $d.metricsPort)) -}}
{{- end -}}
{{- if and (eq $d.mode "sidecar") (has (int $d.probePort) (list (int $w.port) (int $w.metricsPort) (int $w.probePort))) -}}
{{- fail (printf "discoverer.probePort %d collides with a webhook port in sidecar mode" (int $d.probePort)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
