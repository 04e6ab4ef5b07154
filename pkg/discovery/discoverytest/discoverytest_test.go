package discoverytest

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestExpectedEndpoints(t *testing.T) {
	insts := []Instance{
		{ID: "i-1", State: "running", PrivateIP: "10.0.0.1", PublicIP: "54.0.0.1", Zone: "a", Tags: map[string]string{"app": "web", "port": "8080"}},
		{ID: "i-2", State: "stopped", PrivateIP: "10.0.0.2", Tags: map[string]string{"app": "web"}},
		{ID: "i-3", State: "running", PrivateIP: "10.0.0.3", Zone: "b", Tags: map[string]string{"app": "Web"}},
		{ID: "i-4", State: "running", PrivateIP: "10.0.0.4", Zone: "b", Tags: map[string]string{"app": "web", "port": "080"}},
		{ID: "i-5", State: "running", PrivateIP: "10.0.0.5", Zone: "c", Tags: map[string]string{"app": "web", "team": ""}},
	}
	got := ExpectedEndpoints(insts, map[string]string{"app": "web"}, nil, false, 80, "port")
	want := map[string]Endpoint{"i-1": {"10.0.0.1", 8080, "a"}, "i-5": {"10.0.0.5", 80, "c"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pairs: %v, want %v", got, want)
	}
	got = ExpectedEndpoints(insts, nil, []string{"team"}, true, 80, "")
	if len(got) != 0 {
		t.Errorf("public, key team: %v, want none (i-5 has no public IPv4)", got)
	}
}

func TestRecordingWriter(t *testing.T) {
	w := NewRecordingWriter(fake.NewClientBuilder().Build())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}}
	if err := w.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	if w.Count() != 2 || !reflect.DeepEqual(w.Since(1), []string{"delete *v1.ConfigMap ns/c"}) {
		t.Errorf("count %d, since(1) %v", w.Count(), w.Since(1))
	}
}
