package chart_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// valueSet is one configuration of the chart the tests render, lint, install and run.
type valueSet struct {
	name   string
	values map[string]any
	// webhookFlags and discovererFlags must all be in the rendered command lines (exactly, as
	// "--flag=value"); absentFlags must be in neither.
	webhookFlags    []string
	discovererFlags []string
	absentFlags     []string
	// check asserts what is particular to this set (the invariants of every set are checked too).
	check func(t *testing.T, m *manifest)
}

// defaultWebhookFlags are the flags the default values map to.
func defaultWebhookFlags() []string {
	return []string{
		"--webhook-port=9443", "--cert-dir=/var/run/ec2guard/tls", "--cert-name=tls.crt", "--key-name=tls.key",
		"--enable-http2=false", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
		"--enforce-spec=deny", "--enforce-secret=deny", "--enforce-secret-access=deny", "--enforce-credentials=deny",
		"--enforce-iam-deny=deny", "--enforce-iam-unknown=warn", "--enforce-permissive-no-filters=warn",
		"--iam-deadline=2s", "--iam-cache-ttl=5m", "--iam-unknown-ttl=10s", "--iam-sources=local",
		"--iam-read-with=upstream", "--iam-collection=per-principal",
		"--log-level=info", "--log-format=json", "--shutdown-timeout=30s",
	}
}

// defaultDiscovererFlags are the flags the default discoverer values map to.
func defaultDiscovererFlags() []string {
	return []string{
		"--metrics-bind-address=:8082", "--health-probe-bind-address=:8083", "--leader-elect=true",
		"--leader-election-namespace=" + releaseNamespace, "--leader-election-id=ec2guard-discoverer",
		"--interval=30s", "--jitter=0.1", "--group-timeout=2m", "--max-backoff=0s", "--max-concurrent-refreshes=8",
		"--publish=endpointslices", "--zone-hints=true", "--annotation-heartbeat=0s",
		"--iam-audit=true", "--iam-read-with=upstream", "--iam-policy-ttl=5m",
		"--log-level=info", "--log-format=json", "--shutdown-timeout=30s",
	}
}

// testCAPEM returns the PEM of a fresh self-signed CA certificate (for the user-supplied TLS mode).
func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ec2guard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// valueSets are the configurations every chart test goes through.
func valueSets(t *testing.T) []valueSet {
	caPEM := testCAPEM(t)
	return []valueSet{
		{
			name:            "defaults",
			webhookFlags:    defaultWebhookFlags(),
			discovererFlags: defaultDiscovererFlags(),
			absentFlags:     []string{"--secret-namespaces", "--secret-label-selector", "--aws-endpoint", "--port-tag", "--discover-from-tags"},
			check:           checkDefaults,
		},
		{
			name:   "cert-manager",
			values: map[string]any{"certManager": map[string]any{"enabled": true}},
			check:  checkCertManager,
		},
		{
			name: "cert-manager-cluster-issuer",
			values: map[string]any{"certManager": map[string]any{
				"enabled": true, "issuerRef": map[string]any{"kind": "ClusterIssuer", "name": "corp-ca"}}},
			check: checkCertManagerClusterIssuer,
		},
		{
			name:   "user-tls",
			values: map[string]any{"tls": map[string]any{"secretName": "my-webhook-tls", "caBundle": caPEM}},
			check:  func(t *testing.T, m *manifest) { checkUserTLS(t, m, "my-webhook-tls", caPEM) },
		},
		{
			name: "secret-namespaces",
			values: map[string]any{"webhook": map[string]any{
				"secretNamespaces": []any{"gloo-system", "team-a"}, "secretLabelSelector": "app=gloo"}},
			webhookFlags: []string{"--secret-namespaces=gloo-system,team-a", "--secret-label-selector=app=gloo"},
			check:        checkSecretNamespaces,
		},
		{
			name:        "discoverer-off",
			values:      map[string]any{"discoverer": map[string]any{"enabled": false}},
			absentFlags: []string{"--leader-elect", "--interval"},
			check:       checkDiscovererOff,
		},
		{
			name:            "discoverer-sidecar",
			values:          map[string]any{"discoverer": map[string]any{"mode": "sidecar"}},
			discovererFlags: defaultDiscovererFlags(),
			check:           checkSidecar,
		},
		{
			name: "discoverer-sharded",
			values: map[string]any{"discoverer": map[string]any{
				"sharding": map[string]any{"enabled": true, "leaseDuration": "20s", "renewInterval": "4s"}, "serviceType": "clusterip",
				"discoverFromTags": map[string]any{"enabled": true, "secret": "gloo-system/aws", "regions": []any{"us-east-1"},
					"targetNamespaces": []any{"team-a", "team-b"}, "maxUpstreams": 20}}},
			discovererFlags: []string{"--leader-elect=false", "--sharding=leases", "--shard-group=ec2guard-discoverer",
				"--shard-namespace=ec2guard-system", "--shard-lease-duration=20s", "--shard-renew-interval=4s", "--service-type=clusterip",
				"--discover-target-namespaces=team-a,team-b", "--discover-max-upstreams=20"},
			check: checkSharded,
		},
		{
			name:   "service-monitor",
			values: map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}}}},
			check:  checkServiceMonitor,
		},
		{
			name: "admission-scope-custom",
			values: map[string]any{"webhook": map[string]any{"admission": map[string]any{
				"excludeNamespaces": []any{}, "excludeReleaseNamespace": false,
				"namespaceSelector": map[string]any{"matchLabels": map[string]any{"team": "payments"}},
				"matchConditions":   []any{map[string]any{"name": "exempt-argo", "expression": "request.userInfo.username != 'system:serviceaccount:argocd:argocd-application-controller'"}},
			}}},
			check: checkAdmissionScopeCustom,
		},
		{
			name:   "reports-crds",
			values: map[string]any{"reports": map[string]any{"installCRDs": true}},
			check:  checkReportsCRDs,
		},
		{
			name:   "self-managed-tls",
			values: map[string]any{"tls": map[string]any{"selfManaged": map[string]any{"enabled": true}}},
			webhookFlags: []string{"--cert-rotation=true", "--cert-rotation-ca-validity=87600h", "--cert-rotation-server-validity=8760h",
				"--cert-rotation-lookahead=2160h", "--cert-rotation-check-interval=12h"},
			check: checkSelfManaged,
		},
		{
			name:            "operations",
			values:          operationsValues(),
			webhookFlags:    []string{"--kube-api-qps=50", "--kube-api-burst=75", "--metrics-secure=true"},
			discovererFlags: []string{"--kube-api-qps=20", "--kube-api-burst=40", "--metrics-secure=true"},
			check:           checkOperations,
		},
		{
			name:   "everything-changed",
			values: everythingChanged(),
			webhookFlags: []string{
				"--webhook-port=10443", "--enable-http2=true", "--metrics-bind-address=:9090", "--health-probe-bind-address=:9091",
				"--enforce-spec=warn", "--enforce-secret=warn", "--enforce-secret-access=off", "--enforce-credentials=warn",
				"--enforce-iam-deny=warn", "--enforce-iam-unknown=deny", "--enforce-permissive-no-filters=off",
				"--iam-deadline=4500ms", "--iam-cache-ttl=1m", "--iam-unknown-ttl=30s",
				"--iam-sources=dry-run,aws-simulator,local", "--iam-read-with=auditor",
				"--iam-collection=account-snapshot", "--aws-endpoint=http://127.0.0.1:5000",
				"--log-level=debug", "--log-format=text", "--shutdown-timeout=10s", "--iam-unknown-ttl=20s",
			},
			discovererFlags: []string{
				"--metrics-bind-address=:9190", "--health-probe-bind-address=:9191", "--leader-elect=false",
				"--leader-election-id=my-lease", "--interval=1m", "--jitter=0.25", "--group-timeout=30s", "--max-backoff=10m",
				"--max-concurrent-refreshes=3", "--publish=none", "--port-tag=service-port", "--zone-hints=false",
				"--annotation-heartbeat=15m", "--discover-from-tags=true", "--discover-secret=gloo-system/aws-creds",
				"--discover-regions=us-east-1,eu-west-1", "--discover-namespace=generated", "--iam-audit=false",
				"--iam-read-with=upstream-then-auditor", "--iam-policy-ttl=10m", "--aws-endpoint=http://127.0.0.1:5000",
				"--log-level=debug", "--log-format=text", "--shutdown-timeout=5s",
			},
			check: checkEverythingChanged,
		},
	}
}

// everythingChanged sets every value that becomes a flag to something other than its default.
func everythingChanged() map[string]any {
	return map[string]any{
		"webhook": map[string]any{
			"replicas": 1, "port": 10443, "metricsPort": 9090, "probePort": 9091, "enableHTTP2": true,
			"enforcement": map[string]any{
				"spec": "warn", "secret": "warn", "secretAccess": "off", "credentials": "warn",
				"iamDeny": "warn", "iamUnknown": "deny", "permissiveNoFilters": "off",
			},
			"iam": map[string]any{
				"deadline": "4500ms", "cacheTTL": "1m", "unknownTTL": "30s",
				"sources": []any{"dry-run", "aws-simulator", "local"}, "reader": "auditor", "auditor": true,
				"collection": "account-snapshot",
			},
			"awsEndpoint": "http://127.0.0.1:5000", "logLevel": "debug", "logFormat": "text",
			"gracefulShutdownTimeout": "10s", "extraArgs": []any{"--iam-unknown-ttl=20s"},
			"admission": map[string]any{
				"onlyEC2Upstreams":  false,
				"timeoutSeconds":    6,
				"validating":        map[string]any{"failurePolicy": "Ignore"},
				"mutating":          map[string]any{"failurePolicy": "Fail"},
				"namespaceSelector": map[string]any{"matchLabels": map[string]any{"ec2guard.io/enabled": "true"}},
				"objectSelector":    map[string]any{"matchExpressions": []any{map[string]any{"key": "skip-ec2guard", "operator": "DoesNotExist"}}},
			},
			"serviceAccount": map[string]any{"annotations": map[string]any{"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/ec2guard-webhook"}},
			"image":          map[string]any{"tag": "v9.9.9"},
		},
		"discoverer": map[string]any{
			"replicas": 1, "metricsPort": 9190, "probePort": 9191,
			"leaderElection": map[string]any{"enabled": false, "id": "my-lease"},
			"interval":       "1m", "jitter": 0.25, "groupTimeout": "30s", "maxBackoff": "10m", "maxConcurrentRefreshes": 3,
			"publish": "none", "portTag": "service-port", "zoneHints": false, "annotationHeartbeat": "15m",
			"discoverFromTags": map[string]any{
				"enabled": true, "secret": "gloo-system/aws-creds", "regions": []any{"us-east-1", "eu-west-1"}, "namespace": "generated",
			},
			"iam":         map[string]any{"audit": false, "readWith": "upstream-then-auditor", "policyTTL": "10m"},
			"awsEndpoint": "http://127.0.0.1:5000", "logLevel": "debug", "logFormat": "text", "shutdownTimeout": "5s",
			"image": map[string]any{"digest": "sha256:" + sha256Hex0},
		},
	}
}

// sha256Hex0 is a syntactically valid digest.
const sha256Hex0 = "0000000000000000000000000000000000000000000000000000000000000000"

// operationsValues turns on what operators add: NetworkPolicies, alerts, HTTPS metrics, the HPA,
// a priority class, and the Kubernetes client's rate limits.
func operationsValues() map[string]any {
	return map[string]any{
		"networkPolicy": map[string]any{
			"enabled":   true,
			"apiServer": map[string]any{"cidrs": []any{"10.0.0.0/16"}},
			"aws":       map[string]any{"cidrs": []any{"172.31.0.0/16"}},
		},
		"metrics": map[string]any{
			"secure":         true,
			"serviceMonitor": map[string]any{"enabled": true},
			"prometheusRule": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}, "alertLabels": map[string]any{"team": "platform"}},
		},
		"webhook": map[string]any{
			"autoscaling":       map[string]any{"enabled": true, "minReplicas": 3, "maxReplicas": 5},
			"priorityClassName": "system-cluster-critical",
			"kubeAPI":           map[string]any{"qps": 50, "burst": 75},
		},
		"discoverer": map[string]any{
			"priorityClassName": "system-cluster-critical",
			"kubeAPI":           map[string]any{"qps": 20, "burst": 40},
		},
	}
}

// checkSharded: the discoverer gets its pod name as the shard identity.
func checkSharded(t *testing.T, m *manifest) {
	t.Helper()
	_, c := discovererDeployment(t, m)
	if c == nil {
		t.Fatal("no discoverer container")
	}
	found := false
	for _, e := range c.Env {
		found = found || (e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name")
	}
	if !found {
		t.Errorf("discoverer env %+v: want POD_NAME from metadata.name", c.Env)
	}
}
