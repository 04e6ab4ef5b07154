package main

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// upstreamGVR is Gloo's Upstream resource.
var upstreamGVR = schema.GroupVersionResource{Group: ec2.GlooGroup, Version: "v1", Resource: "upstreams"}

// Bounds of a cluster read.
const (
	clusterPageSize     = 500
	maxClusterUpstreams = 20000
)

// readCluster lists the Upstreams of the namespace (-n, else the kubeconfig context's) or of every
// namespace, and reads the Secrets the EC2 ones reference, with the user's kubeconfig.
func (a *app) readCluster(ctx context.Context, allNamespaces bool) (*inputs, error) {
	ns := metav1.NamespaceAll
	if !allNamespaces {
		var err error
		if ns, err = a.namespace(); err != nil {
			return nil, err
		}
	}
	dc, err := a.newDynamic()
	if err != nil {
		return nil, err
	}
	in := newInputs()
	in.fromCluster = true
	in.where = nsName(ns)
	opts := metav1.ListOptions{Limit: clusterPageSize}
	for {
		list, err := dc.Resource(upstreamGVR).Namespace(ns).List(ctx, opts)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("list upstreams: the Gloo Upstream CRD (upstreams.gloo.solo.io) is not installed in this cluster: %w", err)
			}
			return nil, fmt.Errorf("list upstreams in %s: %w", nsName(ns), err)
		}
		for i := range list.Items {
			item := &list.Items[i]
			u, err := ec2.FromObject(item.Object)
			switch {
			case errors.Is(err, ec2.ErrNotEC2):
				in.found["non-EC2 Upstream"]++
				in.skipped = append(in.skipped, fmt.Sprintf("%s/%s (cluster)", item.GetNamespace(), item.GetName()))
				continue
			case err != nil:
				return nil, fmt.Errorf("upstream %s/%s: %w", item.GetNamespace(), item.GetName(), err)
			}
			in.found["EC2 Upstream"]++
			in.upstreams = append(in.upstreams, upstreamInput{upstream: u})
			if len(in.upstreams) > maxClusterUpstreams {
				return nil, fmt.Errorf("more than %d EC2 Upstreams in %s; check one namespace at a time with -n", maxClusterUpstreams, nsName(ns))
			}
		}
		if list.GetContinue() == "" {
			break
		}
		opts.Continue = list.GetContinue()
	}
	if err := a.readSecrets(ctx, in); err != nil {
		return nil, err
	}
	return in, nil
}

// readSecrets gets each Secret the Upstreams reference, once. One that does not exist stays absent
// (the verdict says so); one the user may not read is noted as unreadable, without guessing.
func (a *app) readSecrets(ctx context.Context, in *inputs) error {
	wanted := map[types.NamespacedName]bool{}
	for _, ui := range in.upstreams {
		nn, ok := ui.upstream.SecretName()
		// A malformed reference is a spec finding (EC2G209-211); there is nothing to read.
		if ok && len(validation.IsDNS1123Subdomain(nn.Name)) == 0 && len(validation.IsDNS1123Label(nn.Namespace)) == 0 {
			wanted[nn] = true
		}
	}
	if len(wanted) == 0 {
		return nil
	}
	kc, err := a.newKube()
	if err != nil {
		return err
	}
	for nn := range wanted {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, err := kc.CoreV1().Secrets(nn.Namespace).Get(ctx, nn.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			in.secrets[nn] = s
		case apierrors.IsNotFound(err):
		case apierrors.IsForbidden(err):
			in.unreadable[nn] = "forbidden"
		default:
			return fmt.Errorf("get secret %s: %w", nn, err)
		}
	}
	return nil
}
