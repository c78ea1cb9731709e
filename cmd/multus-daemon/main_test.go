package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/logging"
)

// TestLogOptions: the daemon logs as its configuration says, with upstream's
// rotation defaults for absent logOptions keys, and to stderr when it has no
// log file (a daemon that logs nowhere cannot be debugged).
func TestLogOptions(t *testing.T) {
	const base = `{"cniVersion":"1.1.0","multusAutoconfigDir":"/x"`
	tests := []struct {
		name string
		conf string
		want logging.Options
	}{
		{"defaults", base + `}`,
			logging.Options{Level: "error", ToStderr: true, MaxAgeDays: 5, MaxSizeMB: 100, MaxBackups: 5, Compress: true}},
		{"file only", base + `,"logFile":"/var/log/multus.log","logLevel":"verbose"}`,
			logging.Options{Level: "verbose", File: "/var/log/multus.log", MaxAgeDays: 5, MaxSizeMB: 100, MaxBackups: 5, Compress: true}},
		{"file and stderr, options", base + `,"logFile":"/var/log/multus.log","logToStderr":true,"logLevel":"debug",
			"logOptions":{"maxAge":1,"maxSize":2,"maxBackups":3,"compress":false}}`,
			logging.Options{Level: "debug", ToStderr: true, File: "/var/log/multus.log", MaxAgeDays: 1, MaxSizeMB: 2, MaxBackups: 3}},
		{"some options", base + `,"logFile":"/l","logOptions":{"maxSize":7,"compress":false}}`,
			logging.Options{Level: "error", File: "/l", MaxAgeDays: 5, MaxSizeMB: 7, MaxBackups: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := config.ParseDaemon([]byte(tt.conf))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, logOptions(conf), cmpopts.IgnoreUnexported(logging.Options{})); diff != "" {
				t.Errorf("logging options (-want +got):\n%s", diff)
			}
		})
	}
}
