package demo

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// maxManifestSize bounds one rendered chart document.
const maxManifestSize = 1 << 20

// deployment is what the demo takes from one of the chart's Deployments: the container's
// command line and the ServiceAccount it runs as.
type deployment struct {
	args           []string
	serviceAccount string
}

// chartInstall is the rendered chart turned into what a cluster without kubelet can run.
type chartInstall struct {
	// manifest holds the ServiceAccounts, RBAC and webhook configurations, the latter pointing at
	// webhookURL instead of the webhook Service.
	manifest   []byte
	webhook    deployment
	discoverer deployment
}

// kept are the kinds applied as rendered. Deployments and Services are left out: nothing runs
// pods here, and a webhook Service would make the API server dial its (non-loopback) ClusterIP.
var kept = map[string]bool{
	"ServiceAccount": true, "ClusterRole": true, "ClusterRoleBinding": true, "Role": true, "RoleBinding": true,
}

// localInstall reads `helm template` output: it keeps the objects in kept, rewrites both webhook
// configurations to call webhookURL + the path the chart gives, and takes the command lines and
// ServiceAccounts of the webhook and discoverer Deployments.
func localInstall(rendered []byte, webhookURL string) (*chartInstall, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(rendered), 4096)
	out := &chartInstall{}
	var docs [][]byte
	for i := 0; ; i++ {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("rendered chart, document %d: %w", i, err)
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		switch kind := u.GetKind(); {
		case kind == "ValidatingWebhookConfiguration" || kind == "MutatingWebhookConfiguration":
			if err := pointWebhooksAt(u, webhookURL); err != nil {
				return nil, err
			}
		case kind == "Deployment":
			d, name, err := deploymentOf(u)
			if err != nil {
				return nil, err
			}
			switch name {
			case "webhook":
				out.webhook = d
			case "discoverer":
				out.discoverer = d
			}
			continue
		case !kept[kind]:
			continue
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("rendered chart: encoding %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		if len(b) > maxManifestSize {
			return nil, fmt.Errorf("rendered chart: %s %s is %d bytes, more than %d", u.GetKind(), u.GetName(), len(b), maxManifestSize)
		}
		docs = append(docs, b)
	}
	if out.webhook.args == nil || out.discoverer.args == nil {
		return nil, errors.New("rendered chart: the webhook or discoverer Deployment is missing")
	}
	out.manifest = bytes.Join(docs, []byte("---\n"))
	return out, nil
}

// pointWebhooksAt replaces each webhook's clientConfig.service with url = base + service.path,
// keeping the chart's caBundle.
func pointWebhooksAt(u *unstructured.Unstructured, base string) error {
	hooks, found, err := unstructured.NestedSlice(u.Object, "webhooks")
	if err != nil || !found {
		return fmt.Errorf("rendered chart: %s %s has no webhooks (%v)", u.GetKind(), u.GetName(), err)
	}
	for i, h := range hooks {
		hook, ok := h.(map[string]any)
		if !ok {
			return fmt.Errorf("rendered chart: %s %s webhooks[%d] is not an object", u.GetKind(), u.GetName(), i)
		}
		path, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
		if path == "" {
			return fmt.Errorf("rendered chart: %s %s webhooks[%d].clientConfig.service.path is empty", u.GetKind(), u.GetName(), i)
		}
		unstructured.RemoveNestedField(hook, "clientConfig", "service")
		if err := unstructured.SetNestedField(hook, base+path, "clientConfig", "url"); err != nil {
			return fmt.Errorf("rendered chart: %s %s webhooks[%d]: %w", u.GetKind(), u.GetName(), i, err)
		}
		hooks[i] = hook
	}
	return unstructured.SetNestedSlice(u.Object, hooks, "webhooks")
}

// deploymentOf returns the command line of the Deployment's first container (named after the
// component) and its ServiceAccount.
func deploymentOf(u *unstructured.Unstructured) (deployment, string, error) {
	containers, _, err := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if err != nil || len(containers) == 0 {
		return deployment{}, "", fmt.Errorf("rendered chart: Deployment %s has no containers (%v)", u.GetName(), err)
	}
	c, ok := containers[0].(map[string]any)
	if !ok {
		return deployment{}, "", fmt.Errorf("rendered chart: Deployment %s: containers[0] is not an object", u.GetName())
	}
	name, _, _ := unstructured.NestedString(c, "name")
	args, _, err := unstructured.NestedStringSlice(c, "args")
	if err != nil {
		return deployment{}, "", fmt.Errorf("rendered chart: Deployment %s: args: %w", u.GetName(), err)
	}
	sa, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "serviceAccountName")
	if sa == "" {
		return deployment{}, "", fmt.Errorf("rendered chart: Deployment %s has no serviceAccountName", u.GetName())
	}
	return deployment{args: args, serviceAccount: sa}, name, nil
}
