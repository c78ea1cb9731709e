package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// ours are the metrics this package defines.
var ours = []string{
	"multus_attachment_duration_seconds",
	"multus_attachment_records",
	"multus_delegate_failures_total",
	"multus_dynamic_network_changes_total",
	"multus_kubernetes_api_requests_total",
	"multus_request_duration_seconds",
	"multus_requests_in_flight",
	"multus_requests_total",
}

// TestRegistry: New puts every metric, the records gauge (read at each scrape)
// and the Go and process collectors on the registry it is given and on no
// other, so two registries (a test's and the daemon's) neither collide nor
// share counts.
func TestRegistry(t *testing.T) {
	records := 3.0
	reg := prometheus.NewRegistry()
	m := New(reg, func() float64 { return records })
	// Vectors appear once they have a series.
	m.NetworkLatency.WithLabelValues("ADD", "ns/net").Observe(0.1)
	m.DelegateFailures.WithLabelValues("macvlan").Inc()
	m.APIRequests.WithLabelValues("GET", "200").Inc()
	m.ObserveDynamic(1, 0, false)
	m.ObserveRequest("/cni", "ADD", "success", time.Millisecond)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	for _, want := range append(slices.Clone(ours), "go_goroutines", "process_cpu_seconds_total") {
		if !slices.Contains(names, want) {
			t.Errorf("registry lacks %s", want)
		}
	}
	for _, v := range []float64{3, 5} {
		records = v
		if got := gather(t, reg)["multus_attachment_records"].Value; got != v {
			t.Errorf("records gauge %v, want %v read at the scrape", got, v)
		}
	}

	other := prometheus.NewRegistry()
	New(other, func() float64 { return 0 }).ObserveRequest("/cni", "ADD", "success", time.Millisecond)
	key := "multus_requests_total{command=ADD,endpoint=/cni,result=success}"
	if a, b := gather(t, reg)[key].Value, gather(t, other)[key].Value; a != 1 || b != 1 {
		t.Errorf("two registries counted %v and %v, want 1 each", a, b)
	}
}

// sample is one gathered series: a counter's or gauge's value, or a
// histogram's count and sum.
type sample struct {
	Value float64
	Count uint64
	Sum   float64
}

// gather scrapes reg into name{label=value,...} -> sample, for the metrics of
// this package. (prometheus/testutil would need a module go.mod lacks.)
func gather(t *testing.T, reg *prometheus.Registry) map[string]sample {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]sample{}
	for _, f := range families {
		if !slices.Contains(ours, f.GetName()) {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := f.GetName()
			if len(labels) > 0 {
				slices.Sort(labels)
				key += "{" + strings.Join(labels, ",") + "}"
			}
			var s sample
			switch {
			case m.GetCounter() != nil:
				s.Value = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s.Value = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				s.Count, s.Sum = m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
			out[key] = s
		}
	}
	return out
}

// only keeps the series of the named metrics.
func only(all map[string]sample, names ...string) map[string]sample {
	out := map[string]sample{}
	for k, v := range all {
		name, _, _ := strings.Cut(k, "{")
		if slices.Contains(names, name) {
			out[k] = v
		}
	}
	return out
}

// TestObserveRequest: each call adds one to the counter of its endpoint,
// command and result, and one observation of its duration, in seconds, to the
// histogram of its command.
func TestObserveRequest(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, func() float64 { return 0 })
	type call struct {
		endpoint, command, result string
		d                         time.Duration
	}
	calls := []call{
		{"/cni", "ADD", "success", 250 * time.Millisecond},
		{"/cni", "ADD", "success", 750 * time.Millisecond},
		{"/cni", "ADD", "error", 2 * time.Second},
		{"/cni", "DEL", "rejected", 0},
		{"/delegate", "ADD", "success", time.Second},
	}
	for _, c := range calls {
		m.ObserveRequest(c.endpoint, c.command, c.result, c.d)
	}
	want := map[string]sample{
		"multus_requests_total{command=ADD,endpoint=/cni,result=success}":      {Value: 2},
		"multus_requests_total{command=ADD,endpoint=/cni,result=error}":        {Value: 1},
		"multus_requests_total{command=DEL,endpoint=/cni,result=rejected}":     {Value: 1},
		"multus_requests_total{command=ADD,endpoint=/delegate,result=success}": {Value: 1},
		"multus_request_duration_seconds{command=ADD}":                         {Count: 4, Sum: 0.25 + 0.75 + 2 + 1},
		"multus_request_duration_seconds{command=DEL}":                         {Count: 1},
	}
	got := only(gather(t, reg), "multus_requests_total", "multus_request_duration_seconds")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

// TestAddInFlight: the gauge follows the deltas.
func TestAddInFlight(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, func() float64 { return 0 })
	steps := []struct {
		delta, want float64
	}{{1, 1}, {1, 2}, {-1, 1}, {1, 2}, {-1, 1}, {-1, 0}}
	for i, s := range steps {
		m.AddInFlight(s.delta)
		if got := gather(t, reg)["multus_requests_in_flight"].Value; got != s.want {
			t.Errorf("step %d: in flight %v, want %v", i, got, s.want)
		}
	}
}

// failing is a transport that cannot reach the server.
type failing struct{}

var errUnreachable = errors.New("connection refused")

func (failing) RoundTrip(*http.Request) (*http.Response, error) { return nil, errUnreachable }

// TestCountingTransport: every request through the transport is counted by
// upper-case method and status code, or "error" when no answer came; the
// answer and the error are passed through unchanged.
func TestCountingTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/forbidden":
			w.WriteHeader(http.StatusForbidden)
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	m := New(reg, func() float64 { return 0 })
	client := &http.Client{Transport: m.CountingTransport(srv.Client().Transport)}
	broken := &http.Client{Transport: m.CountingTransport(failing{})}
	calls := []struct {
		client     *http.Client
		method     string
		path       string
		wantStatus int // 0 when the call fails
	}{
		{client, "get", "/pods", http.StatusOK},
		{client, http.MethodGet, "/pods", http.StatusOK},
		{client, http.MethodPatch, "/pods/status", http.StatusOK},
		{client, http.MethodGet, "/forbidden", http.StatusForbidden},
		{client, http.MethodDelete, "/missing", http.StatusNotFound},
		{broken, http.MethodGet, "/pods", 0},
		{broken, http.MethodGet, "/pods", 0},
	}
	for _, c := range calls {
		req, err := http.NewRequest(c.method, srv.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.client.Do(req)
		if c.wantStatus == 0 {
			if !errors.Is(err, errUnreachable) {
				t.Errorf("%s %s: error %v, want the transport's", c.method, c.path, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.wantStatus {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, resp.StatusCode, c.wantStatus)
		}
	}
	want := map[string]sample{
		"multus_kubernetes_api_requests_total{code=200,method=GET}":    {Value: 2},
		"multus_kubernetes_api_requests_total{code=200,method=PATCH}":  {Value: 1},
		"multus_kubernetes_api_requests_total{code=403,method=GET}":    {Value: 1},
		"multus_kubernetes_api_requests_total{code=404,method=DELETE}": {Value: 1},
		"multus_kubernetes_api_requests_total{code=error,method=GET}":  {Value: 2},
	}
	if diff := cmp.Diff(want, only(gather(t, reg), "multus_kubernetes_api_requests_total")); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

// TestObserveDynamic: each reconciliation adds its interfaces added and
// removed, and counts a failure.
func TestObserveDynamic(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, func() float64 { return 0 })
	m.ObserveDynamic(2, 1, false)
	m.ObserveDynamic(0, 1, true)
	got := gather(t, reg)
	for key, want := range map[string]float64{
		"multus_dynamic_network_changes_total{change=added}":   2,
		"multus_dynamic_network_changes_total{change=removed}": 2,
		"multus_dynamic_network_changes_total{change=failed}":  1,
	} {
		if got[key].Value != want {
			t.Errorf("%s = %v, want %v", key, got[key].Value, want)
		}
	}
}
