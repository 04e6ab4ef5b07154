package policycheck

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkUserFacing measures what users wait for, with the engine as every front end creates it
// (NewEngine's defaults):
//
//   - engine-start: NewEngine (paid once by the webhook and discoverer, and by every `ec2guard
//     check` run);
//   - webhook-cold: a new principal's policy set compiled and DescribeInstances decided once (the
//     webhook's answer for a secret it has not seen; warm answers come from its IAM cache);
//   - audit-pass: the discoverer's audit with a cold decision cache: 20 principals (10-statement
//     policies), 4 regions each, 10 Upstreams per principal and region.
//
// Run: go test -run '^$' -bench UserFacing -benchtime 20x ./pkg/policycheck/
func BenchmarkUserFacing(b *testing.B) {
	ctx := context.Background()
	variants := []struct {
		name string
		opts []Option
	}{{"default", nil}}
	for _, v := range variants {
		b.Run("engine-start/"+v.name, func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := NewEngine(ctx, v.opts...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, v := range variants {
		b.Run("webhook-cold/"+v.name, func(b *testing.B) {
			e, err := NewEngine(ctx, v.opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				ps := policySetFromText(b, strings.Replace(benchPolicy(10), `"Describe"`, fmt.Sprintf(`"Describe%d"`, i), 1))
				d, err := e.Evaluate(ctx, ps, DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo", "", "us-east-1"))
				if err != nil || !d.IsAllowed() {
					b.Fatalf("%v %s", err, d.Result)
				}
			}
		})
	}
	regions := []string{"us-east-1", "eu-west-1", "ap-south-1", "us-west-2"}
	sets := make([]*PolicySet, 20)
	for i := range sets {
		sets[i] = policySetFromText(b, strings.Replace(benchPolicy(10), `"Describe"`, fmt.Sprintf(`"Describe%d"`, i), 1))
	}
	for _, v := range variants {
		b.Run("audit-pass/"+v.name, func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				b.StopTimer() // the engine is created once per process (engine-start)
				e, err := NewEngine(ctx, v.opts...)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for p, ps := range sets {
					principal := fmt.Sprintf("arn:aws:iam::111122223333:user/u%d", p)
					for _, r := range regions {
						for range 10 {
							if _, err := e.Evaluate(ctx, ps, DescribeInstancesRequest(principal, "", r)); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
			}
		})
	}
}
