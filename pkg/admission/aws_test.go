package admission

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
)

// queryAPI answers the AWS Query protocol (STS, IAM, EC2) by Action.
func queryAPI(t *testing.T, answers map[string]func(w http.ResponseWriter)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		answer, ok := answers[r.Form.Get("Action")]
		if !ok {
			w.WriteHeader(http.StatusNotImplemented)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		answer(w)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func xmlAnswer(status int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func factoryAWS(t *testing.T, endpoint string) *FactoryAWS {
	t.Helper()
	f, err := awsclients.NewFactory(awsclients.Options{
		Endpoint:   endpoint,
		HTTPClient: awsclients.LoopbackOnlyHTTPClient(),
		Retry:      ec2api.RetryOptions{MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := collect.New(collect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &FactoryAWS{Factory: f, Collector: c}
}

func secretRequest() awsclients.Request {
	creds := ec2.NewCredentials(testAccessKeyID, testSecretKey, "", types.NamespacedName{Namespace: "default", Name: "gloo-tag-group1"})
	return awsclients.Request{Region: "us-east-1", Secret: &awsclients.SecretVersion{UID: "uid-1", ResourceVersion: "1", Credentials: creds}}
}

func TestFactoryAWS(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := queryAPI(t, map[string]func(http.ResponseWriter){
		"GetCallerIdentity": xmlAnswer(http.StatusOK, callerIdentityXML),
		"DescribeInstances": xmlAnswer(http.StatusPreconditionFailed,
			`<Response><Errors><Error><Code>DryRunOperation</Code><Message>Request would have succeeded, but DryRun flag is set.</Message></Error></Errors><RequestID>1</RequestID></Response>`),
		"GetUser": xmlAnswer(http.StatusForbidden,
			`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error><RequestId>1</RequestId></ErrorResponse>`),
	})
	aws := factoryAWS(t, srv.URL)
	ctx := context.Background()

	p, err := aws.Principal(ctx, secretRequest())
	if err != nil || p.ARN != testUser {
		t.Fatalf("principal %+v, %v", p, err)
	}
	if r := aws.DryRun(ctx, secretRequest()); r.Decision != collect.Allowed || r.Source != collect.SourceDryRun {
		t.Errorf("dry run %+v, want allowed", r)
	}
	if _, err := aws.Policies(ctx, secretRequest(), testUser); !collect.IsAccessDenied(err) {
		t.Errorf("policies: %v, want access denied", err)
	}
	if r := aws.Simulate(ctx, secretRequest(), testUser); r.Decision != collect.Unknown || r.Reason == "" {
		t.Errorf("simulate %+v, want unknown with a reason", r)
	}
	aws.Collector = nil
	if _, err := aws.Policies(ctx, secretRequest(), testUser); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("no collector: %v", err)
	}
	if _, err := aws.Principal(ctx, awsclients.Request{}); err == nil {
		t.Error("a request without region resolved")
	}
}
