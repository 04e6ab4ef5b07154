package discoverer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

// Upstreams stored without the webhook's checks (webhook down, excluded by a selector, created
// before install): the discoverer applies the secret-use rules itself.
const storedUpstreamsYAML = `apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: web, namespace: default}
spec:
  awsEc2:
    region: us-east-1
    secretRef: {name: aws-a, namespace: default}
    filters: [{kvPair: {key: app, value: web}}]
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: api, namespace: default}
spec:
  awsEc2:
    region: us-east-1
    secretRef: {name: aws-a, namespace: default}
    filters: [{kvPair: {key: app, value: api}}]
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: borrow, namespace: team-a}
spec:
  awsEc2:
    region: eu-west-1
    secretRef: {name: aws-b, namespace: default}
    filters: [{kvPair: {key: app, value: web}}]
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: nopod, namespace: team-b}
spec:
  awsEc2:
    region: us-east-1
    filters: [{kvPair: {key: app, value: web}}]
`

// TestDiscovererHardening, through the real API server and moto:
//   - an Upstream in team-a naming a secret of default that is not shared with team-a is not
//     discovered: no AWS request is signed with that secret's key, nothing is published, its
//     annotation and its report say EC2G701; once the secret's owner annotates it for team-a
//     (a Secret update seen by the informer) it is discovered;
//   - an Upstream without secretRef outside --pod-identity-namespaces is refused (EC2G702);
//   - Services are headless by default;
//   - an Upstream whose Service cannot be written (a foreign Service holds its name) is reported
//     (EC2G703, metric) while its group's other Upstream is published, and it is published once
//     the obstacle is gone.
func TestDiscovererHardening(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	moto := awsemu.Start(t)
	env := k8senv.Start(t, k8senv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := env.Client

	sd := moto.Seeder()
	var users [2]awsemu.User
	for i, name := range []string{"discover-a", "discover-b"} {
		u, err := sd.CreateUser(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := sd.PutUserPolicy(ctx, name, "policy", discoveryPolicy); err != nil {
			t.Fatal(err)
		}
		users[i] = u
	}
	userA, userB := users[0], users[1]
	if _, err := sd.RunInstances(ctx, east, 3, map[string]string{"app": "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sd.RunInstances(ctx, east, 2, map[string]string{"app": "api"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sd.RunInstances(ctx, west, 2, map[string]string{"app": "web"}); err != nil {
		t.Fatal(err)
	}
	// A Service of someone else holds the name of api's Service.
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: discovery.ServiceName("api")},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}}}}
	createAndApply(t, ctx, env, storedUpstreamsYAML,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}},
		awsSecret("aws-a", userA), awsSecret("aws-b", userB), foreign)

	groupA := discovery.GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-a"}, Region: east}
	groupB := discovery.GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-b"}, Region: west}
	rep := newReports()
	start := time.Now()
	d := startDiscovererWith(t, ctx, env, moto, rep, func(o *discovery.Options) { o.PodIdentityNamespaces = ec2.NamespaceList{"team-c"} })

	ra := rep.refreshAfter(t, groupA, start, func(r discovery.RefreshReport) bool { return r.Err == nil && r.Upstreams == 2 })
	if ra.PublishErr == nil || !strings.Contains(ra.PublishErr.Error(), "not managed by the ec2guard discoverer") {
		t.Errorf("group A's publication error = %v, want api's Service refused", ra.PublishErr)
	}
	eastNow := fleetState(t, ctx, sd, east)
	sameEndpoints(t, "web", published(t, c, "default", "web"), expected(eastNow, map[string]string{"app": "web"}, nil, false, 80, "port"))
	var svc corev1.Service
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: discovery.ServiceName("web")}, &svc); err != nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("web's Service: %v, clusterIP %q, want headless", err, svc.Spec.ClusterIP)
	}
	if st := statusOf(t, c, "default", "api"); !strings.Contains(st.LastError, string(codes.PublishFailed)) {
		t.Errorf("api's status %+v, want %s", st, codes.PublishFailed)
	}
	if v := metricValue(t, d.metrics, "ec2guard_discoverer_upstream_publish_failures", map[string]string{"upstream": "api"}); v < 1 {
		t.Errorf("upstream_publish_failures{api} = %v, want at least 1", v)
	}

	for _, rc := range []struct {
		ns, name string
		code     string
	}{{"team-a", "borrow", string(codes.DiscoverySecretNotShared)}, {"team-b", "nopod", string(codes.DiscoveryPodIdentityNotAllowed)}} {
		st := statusOf(t, c, rc.ns, rc.name)
		if st.Refusal == nil || st.Refusal.Code != rc.code || st.IAM != nil {
			t.Errorf("%s/%s: status %+v, want refused with %s", rc.ns, rc.name, st, rc.code)
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: rc.ns, Name: discovery.ServiceName(rc.name)}, &corev1.Service{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s/%s: Service of a refused Upstream: %v", rc.ns, rc.name, err)
		}
		r, err := getReport(ctx, c, rc.ns, rc.name)
		if err != nil {
			t.Errorf("%s/%s: report: %v", rc.ns, rc.name, err)
			continue
		}
		found := false
		for _, res := range r.Results {
			found = found || strings.Contains(res.Description, rc.code)
		}
		if !found {
			t.Errorf("%s/%s: no report result names %s: %+v", rc.ns, rc.name, rc.code, r.Results)
		}
		if v := metricValue(t, d.metrics, "ec2guard_discoverer_upstream_refused", map[string]string{"namespace": rc.ns, "upstream": rc.name, "code": rc.code}); v != 1 {
			t.Errorf("%s/%s: upstream_refused = %v", rc.ns, rc.name, v)
		}
	}
	if n := d.http.signedWith(userB.AccessKeyID); n != 0 {
		t.Errorf("%d AWS requests were signed with aws-b's key, which no allowed Upstream names", n)
	}

	// The obstacle goes: api is published on its next retry.
	if err := c.Delete(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	// Retries follow the Upstream's own backoff (2·interval, 4·interval, ...): wait for the
	// refresh that publishes it, within a bounded number of refreshes.
	mark := time.Now()
	for i := 0; len(published(t, c, "default", "api")) == 0; i++ {
		if i == 10 {
			t.Fatal("api was not published within 10 refreshes after its obstacle went")
		}
		mark = rep.refreshAfter(t, groupA, mark, nil).Started
	}
	sameEndpoints(t, "api after the obstacle went", published(t, c, "default", "api"), expected(eastNow, map[string]string{"app": "api"}, nil, false, 80, "port"))

	// The secret's owner shares aws-b with team-a: the Secret informer regroups, borrow is
	// discovered with it.
	if out, errOut, err := env.Kubectl(ctx, "annotate", "secret", "aws-b", "-n", "default", ec2.AnnotationSecretAllowedNamespaces+"=team-a"); err != nil {
		t.Fatalf("kubectl annotate: %v\n%s%s", err, out, errOut)
	}
	mark = time.Now()
	if rb := rep.refreshAfter(t, groupB, mark.Add(-time.Minute), nil); rb.Err != nil {
		t.Fatalf("group B after the opt-in: %v", rb.Err)
	}
	sameEndpoints(t, "borrow after the opt-in", published(t, c, "team-a", "borrow"), expected(fleetState(t, ctx, sd, west), map[string]string{"app": "web"}, nil, false, 80, "port"))
	if d.http.signedWith(userB.AccessKeyID) == 0 {
		t.Error("no AWS request was signed with aws-b's key after the opt-in")
	}
	logs := d.logs.String()
	for _, u := range users {
		if strings.Contains(logs, u.SecretAccessKey) {
			t.Errorf("the discoverer's logs contain the secret access key of %s", u.Name)
		}
	}
}
