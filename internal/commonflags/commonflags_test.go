package commonflags

import (
	"flag"
	"log/slog"
	"testing"
)

func TestLogging(t *testing.T) {
	l := DefaultLogging()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	l.AddFlags(fs)
	if err := fs.Parse([]string{"--log-level=warn", "--log-format=text"}); err != nil {
		t.Fatal(err)
	}
	if lv, err := l.SlogLevel(); err != nil || lv != slog.LevelWarn || l.Validate() != nil {
		t.Errorf("warn/text: %v %v %v", lv, err, l.Validate())
	}
	for _, bad := range []Logging{{Level: "verbose", Format: "json"}, {Level: "info", Format: "yaml"}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestIAMReadWith(t *testing.T) {
	for _, v := range []string{ReadWithUpstream, ReadWithAuditor, ReadWithUpstreamThenAuditor} {
		if err := ValidateIAMReadWith(v); err != nil {
			t.Error(err)
		}
	}
	if ValidateIAMReadWith("auditor-then-upstream") == nil {
		t.Error("an unknown value was accepted")
	}
}
