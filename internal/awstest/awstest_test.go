package awstest

import (
	"os"
	"testing"
)

func TestIsolateEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAOUTSIDETHETEST00")
	t.Setenv("AWS_PROFILE", "developer")
	t.Run("isolated", func(t *testing.T) {
		IsolateEnv(t)
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE"} {
			if v, ok := os.LookupEnv(k); ok {
				t.Errorf("%s still set (%q)", k, v)
			}
		}
		if os.Getenv("AWS_EC2_METADATA_DISABLED") != "true" {
			t.Error("instance metadata not disabled")
		}
		for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
			if _, err := os.Stat(os.Getenv(k)); !os.IsNotExist(err) {
				t.Errorf("%s = %q should name a file that does not exist", k, os.Getenv(k))
			}
		}
	})
	if os.Getenv("AWS_PROFILE") != "developer" {
		t.Error("AWS_PROFILE not restored after the test")
	}
}
