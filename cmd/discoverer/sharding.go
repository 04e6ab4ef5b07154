package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/sharding"
)

// Sharding modes.
const (
	shardingNone   = "none"
	shardingLeases = "leases"
)

// shardingConfig is how replicas share the credential groups: none (one elected leader does all)
// or leases (every replica renews a Lease and owns the groups rendezvous hashing gives it).
type shardingConfig struct {
	mode          string
	group         string
	identity      string
	namespace     string
	leaseDuration time.Duration
	renewInterval time.Duration
}

func (s *shardingConfig) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.mode, "sharding", shardingNone, "how replicas share the credential groups: none (the elected leader refreshes all of them) or leases (each replica refreshes the groups it owns; no leader election)")
	fs.StringVar(&s.group, "shard-group", "ec2guard-discoverer", "name shared by the replicas of one discoverer Deployment (prefix of their Leases)")
	fs.StringVar(&s.identity, "shard-identity", os.Getenv("POD_NAME"), "this replica's name among the shard members (default: $POD_NAME, else the host name)")
	fs.StringVar(&s.namespace, "shard-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the shard member Leases (default: $POD_NAMESPACE)")
	fs.DurationVar(&s.leaseDuration, "shard-lease-duration", sharding.DefaultLeaseDuration, "how long a replica's groups stay its own after its last Lease renewal")
	fs.DurationVar(&s.renewInterval, "shard-renew-interval", sharding.DefaultRenewInterval, "how often a replica renews its Lease and reads the others'")
}

func (s *shardingConfig) check() error {
	switch s.mode {
	case shardingNone:
		return nil
	case shardingLeases:
	default:
		return fmt.Errorf("--sharding %q: must be %s or %s", s.mode, shardingNone, shardingLeases)
	}
	var errs []error
	if s.identity == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			errs = append(errs, errors.New("--shard-identity is required with --sharding=leases (no $POD_NAME or host name)"))
		}
		s.identity = host
	}
	if s.namespace == "" {
		errs = append(errs, errors.New("--shard-namespace is required with --sharding=leases (no $POD_NAMESPACE)"))
	}
	if s.renewInterval <= 0 || s.renewInterval >= s.leaseDuration {
		errs = append(errs, fmt.Errorf("--shard-renew-interval %s: must be positive and shorter than --shard-lease-duration %s", s.renewInterval, s.leaseDuration))
	}
	return errors.Join(errs...)
}

// member returns the shard member (nil with --sharding=none).
func (s shardingConfig) member(c client.Client, onChange func(), log logr.Logger) (*sharding.Member, error) {
	if s.mode != shardingLeases {
		return nil, nil
	}
	return sharding.New(c, sharding.Options{
		Group: s.group, Identity: s.identity, Namespace: s.namespace,
		LeaseDuration: s.leaseDuration, RenewInterval: s.renewInterval,
		OnChange: onChange, Log: log,
	})
}
