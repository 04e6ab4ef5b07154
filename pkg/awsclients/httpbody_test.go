package awsclients

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// answerFirst is an HTTP client that makes the order in which a lost answer happens certain
// instead of rare: the SDK closes a request's body as soon as the round trip returns; this client
// does so just before returning, and the connection holds net/http's write of a request body that
// was sent apart from the headers until then. net/http then reads that body once more (to check
// its length) after the SDK closed it, which is what a fast endpoint or a CPU-starved pod causes.
type answerFirst struct {
	next    *http.Client
	release chan struct{}
}

func (c answerFirst) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req)
	if req.Body != nil {
		_ = req.Body.Close() // what smithy-go's ClientHandler does right after
	}
	select {
	case c.release <- struct{}{}:
	default:
	}
	return resp, err
}

// heldConn holds a write that does not start a request (a body sent apart from its headers)
// until the client releases it.
type heldConn struct {
	net.Conn
	release chan struct{}
}

func (c heldConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil && !bytes.HasPrefix(p, []byte("POST ")) {
		select {
		case <-c.release:
		case <-time.After(10 * time.Second):
		}
	}
	return n, err
}

// Every DescribeInstances call is one request on one kept-alive connection, even when the answer
// arrives before net/http has finished with the request body. Without OwnBodies each call's
// connection is closed under the answer (20 calls, 20 connections); when the answer is larger
// than what was already read, the SDK then sends the request again.
func TestAnswerBeforeBodyCheckKeepsConnection(t *testing.T) {
	var requests, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("Action") != "DescribeInstances" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		requests.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationSet/></DescribeInstancesResponse>`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	release := make(chan struct{}, 1)
	dialer := &net.Dialer{}
	hc := answerFirst{release: release, next: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return heldConn{Conn: c, release: release}, nil
		},
	}}}
	f, err := NewFactory(Options{Endpoint: srv.URL, HTTPClient: hc, Retry: ec2api.RetryOptions{MaxAttempts: 3}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Get(context.Background(), Request{Region: "us-east-1", Secret: secretVersion("ns", "s", "uid", "1", testKeyID, testSecretKey)})
	if err != nil {
		t.Fatal(err)
	}
	const calls = 20
	for range calls {
		if _, err := c.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)}); err != nil {
			t.Fatal(err)
		}
	}
	if requests.Load() != calls || conns.Load() != 1 {
		t.Errorf("%d DescribeInstances calls: %d requests on %d connections, want %d on 1", calls, requests.Load(), conns.Load(), calls)
	}
}
