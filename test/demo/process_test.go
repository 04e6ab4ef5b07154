package demo

import (
	"slices"
	"testing"
)

func TestListeningPorts(t *testing.T) {
	for cmdline, want := range map[string][]int{
		"etcd --listen-client-urls=http://127.0.0.1:2379 --listen-peer-urls=http://localhost:2380":   {2379, 2380},
		"kube-apiserver --secure-port=6443 --etcd-servers=http://127.0.0.1:2379":                     {6443, 2379},
		"python3 /v/bin/moto_server -H 127.0.0.1 -p 5000":                                            {5000},
		"webhook --webhook-host=127.0.0.1 --webhook-port=9443 --metrics-bind-address=127.0.0.1:8080": {9443, 8080},
		"webhook --webhook-port=9443 --webhook-port=10443":                                           {10443},
		"discoverer --interval=5s": nil,
		"x -p":                     nil,
	} {
		got := ListeningPorts(cmdline)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ListeningPorts(%q) = %v, want %v", cmdline, got, want)
		}
	}
}
