package selftest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		wantErr string
	}{
		{"verdict", errors.New(`admission webhook "validate-upstream.ec2guard.io" denied the request: EC2G301 spec.awsEc2.secretRef: ...`), ""},
		{"admitted", nil, "was admitted"},
		{"unreachable", errors.New(`Internal error occurred: failed calling webhook "validate-upstream.ec2guard.io": service not found`), "could not call ec2guard"},
		{"other", errors.New("forbidden"), "want ec2guard's EC2G301 verdict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dryRun []string
			c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
				Create: func(_ context.Context, _ client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					o := &client.CreateOptions{}
					o.ApplyOptions(opts)
					dryRun = o.DryRun
					return tc.err
				},
			}).Build()
			err := Run(context.Background(), c, "default")
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run = %v, want error containing %q", err, tc.wantErr)
			}
			if len(dryRun) != 1 || dryRun[0] != "All" {
				t.Errorf("the probe was not a dry run: %v", dryRun)
			}
		})
	}
	if err := Run(context.Background(), fake.NewClientBuilder().Build(), ""); err == nil {
		t.Error("Run without a namespace succeeded")
	}
}
