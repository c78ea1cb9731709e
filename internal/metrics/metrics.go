// Package metrics defines the daemon's Prometheus metrics on a registry given to
// it, so tests and the daemon each have their own.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the daemon's instruments.
type Metrics struct {
	// Requests counts socket requests by endpoint, CNI command and result
	// (success, error, rejected when over the in-flight bound).
	Requests *prometheus.CounterVec
	// Latency observes request durations by command.
	Latency *prometheus.HistogramVec
	// NetworkLatency observes each attachment's delegate call by command and
	// network.
	NetworkLatency *prometheus.HistogramVec
	// DelegateFailures counts failed delegate calls by plugin type.
	DelegateFailures *prometheus.CounterVec
	// InFlight is the number of requests being processed.
	InFlight prometheus.Gauge
	// APIRequests counts Kubernetes API requests by method and code.
	APIRequests *prometheus.CounterVec
	// DynamicChanges counts what dynamic networks did to running pods:
	// interfaces added and removed, and reconciliations that failed.
	DynamicChanges *prometheus.CounterVec
}

var buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// New registers the metrics, the Go and process collectors, and a gauge of the
// attachment records on disk, which records counts at each scrape.
func New(reg prometheus.Registerer, records func() float64) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multus_requests_total", Help: "Socket requests by endpoint, CNI command and result.",
		}, []string{"endpoint", "command", "result"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "multus_request_duration_seconds", Help: "Request processing time by CNI command.", Buckets: buckets,
		}, []string{"command"}),
		NetworkLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "multus_attachment_duration_seconds", Help: "Delegate call time by CNI command and network.", Buckets: buckets,
		}, []string{"command", "network"}),
		DelegateFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multus_delegate_failures_total", Help: "Failed delegate calls by plugin type.",
		}, []string{"plugin"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "multus_requests_in_flight", Help: "Requests being processed.",
		}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multus_kubernetes_api_requests_total", Help: "Kubernetes API requests by method and status code.",
		}, []string{"method", "code"}),
		DynamicChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multus_dynamic_network_changes_total",
			Help: "Changes of running pods' networks (dynamicNetworks): interfaces added, removed, and reconciliations failed.",
		}, []string{"change"}),
	}
	reg.MustRegister(m.Requests, m.Latency, m.NetworkLatency, m.DelegateFailures, m.InFlight, m.APIRequests, m.DynamicChanges,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "multus_attachment_records", Help: "Attachment records on disk: sandboxes with networks.",
		}, records),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveRequest records one request.
func (m *Metrics) ObserveRequest(endpoint, command, result string, d time.Duration) {
	m.Requests.WithLabelValues(endpoint, command, result).Inc()
	m.Latency.WithLabelValues(command).Observe(d.Seconds())
}

// ObserveDynamic records one reconciliation of a running pod's networks.
func (m *Metrics) ObserveDynamic(added, removed int, failed bool) {
	m.DynamicChanges.WithLabelValues("added").Add(float64(added))
	m.DynamicChanges.WithLabelValues("removed").Add(float64(removed))
	if failed {
		m.DynamicChanges.WithLabelValues("failed").Inc()
	}
}

// AddInFlight moves the gauge of requests being processed.
func (m *Metrics) AddInFlight(delta float64) { m.InFlight.Add(delta) }

// CountingTransport counts the requests a Kubernetes client makes.
func (m *Metrics) CountingTransport(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		code := "error"
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		m.APIRequests.WithLabelValues(strings.ToUpper(req.Method), code).Inc()
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
