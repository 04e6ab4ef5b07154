package ec2

import "testing"

func TestSecretUsableFrom(t *testing.T) {
	cases := []struct {
		name       string
		annotation string
		from       string
		want       bool
	}{
		{"own namespace", "", "default", true},
		{"other namespace, no opt-in", "", "team-a", false},
		{"listed", "team-b, team-a", "team-a", true},
		{"not listed", "team-b", "team-a", false},
		{"star", "*", "team-a", true},
		{"malformed list allows nothing", "team-a,Not_A_Namespace", "team-a", false},
		{"prefix is not a match", "team", "team-a", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ann := map[string]string{}
			if tc.annotation != "" {
				ann[AnnotationSecretAllowedNamespaces] = tc.annotation
			}
			if got := SecretUsableFrom("default", ann, tc.from); got != tc.want {
				t.Errorf("SecretUsableFrom(default, %q, %s) = %v, want %v", tc.annotation, tc.from, got, tc.want)
			}
		})
	}
}

func TestParseNamespaceListErrors(t *testing.T) {
	if _, err := ParseNamespaceList("ok,BAD"); err == nil {
		t.Error("an invalid namespace name was accepted")
	}
	l, err := ParseNamespaceList(" a , ,b ")
	if err != nil || len(l) != 2 || !l.Allows("b") || l.Allows("c") {
		t.Errorf("got %v, %v", l, err)
	}
	if l, _ := ParseNamespaceList(""); l.Allows("a") {
		t.Error("the empty list allows a namespace")
	}
}
