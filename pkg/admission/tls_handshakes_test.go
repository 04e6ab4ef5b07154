package admission

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Every new connection to the server is one counted handshake; requests on a kept-alive
// connection add none; a refused handshake is not counted.
func TestCountTLSHandshakes(t *testing.T) {
	m, reg := testMetrics(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
	CountTLSHandshakes(m)(srv.TLS)
	srv.StartTLS()
	defer srv.Close()

	get := func(c *http.Client) {
		t.Helper()
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	c := srv.Client()
	for range 3 {
		get(c) // one connection, kept alive
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	get(c) // a second connection
	http1 := map[string]string{"resumed": "false", "protocol": "http/1.1"}
	if got := counterValue(t, reg, MetricTLSHandshakes, http1); got != 2 {
		t.Errorf("%v handshakes for 4 requests on 2 connections, want 2", got)
	}

	// A verifier set before the option still runs, and a connection it refuses is not counted.
	refuse := &tls.Config{VerifyConnection: func(tls.ConnectionState) error { return errors.New("refused") }}
	CountTLSHandshakes(m)(refuse)
	if err := refuse.VerifyConnection(tls.ConnectionState{}); err == nil {
		t.Error("the earlier verifier was dropped")
	}
	if got := counterValue(t, reg, MetricTLSHandshakes, http1); got != 2 {
		t.Errorf("a refused handshake was counted: %v", got)
	}
}
