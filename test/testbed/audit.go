package testbed

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// auditPolicyYAML audits every request at the Metadata level: who did what to which
// object, and the answer's code.
const auditPolicyYAML = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// AuditEvent is one request the API server audited, at one stage: a watch is
// logged when its response starts (ResponseStarted) and again when it ends
// (ResponseComplete); every other request once, when it completes.
type AuditEvent struct {
	User        string
	Verb        string
	APIGroup    string
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	Code        int
	// URI is the request's path and query; the only name a non-resource
	// request (such as /readyz) has.
	URI     string
	Stage   string
	AuditID string
	// Received is when the request arrived; At is when this stage was logged.
	Received time.Time
	At       time.Time
}

// Kind names the request as RBAC sees it: "verb resource[/subresource]", or
// "verb URI-path" for a non-resource request.
func (ev AuditEvent) Kind() string {
	if ev.Resource == "" {
		path, _, _ := strings.Cut(ev.URI, "?")
		return ev.Verb + " " + path
	}
	if ev.Subresource != "" {
		return ev.Verb + " " + ev.Resource + "/" + ev.Subresource
	}
	return ev.Verb + " " + ev.Resource
}

// AuditEvents returns the requests made by user that completed, in order.
func (cp *ControlPlane) AuditEvents(user string) ([]AuditEvent, error) {
	all, err := cp.AuditStages(user)
	if err != nil {
		return nil, err
	}
	var out []AuditEvent
	for _, ev := range all {
		if ev.Stage == "ResponseComplete" {
			out = append(out, ev)
		}
	}
	return out, nil
}

// AuditStages returns every logged stage of the requests made by user, in the
// order of the log.
func (cp *ControlPlane) AuditStages(user string) ([]AuditEvent, error) {
	f, err := os.Open(filepath.Join(cp.Dir, "audit.log"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AuditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			AuditID    string `json:"auditID"`
			Stage      string `json:"stage"`
			Verb       string `json:"verb"`
			RequestURI string `json:"requestURI"`
			User       struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef struct {
				APIGroup    string `json:"apiGroup"`
				Resource    string `json:"resource"`
				Subresource string `json:"subresource"`
				Namespace   string `json:"namespace"`
				Name        string `json:"name"`
			} `json:"objectRef"`
			ResponseStatus struct {
				Code int `json:"code"`
			} `json:"responseStatus"`
			Received time.Time `json:"requestReceivedTimestamp"`
			At       time.Time `json:"stageTimestamp"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.User.Username != user {
			continue
		}
		if ev.Stage != "ResponseComplete" && ev.Stage != "ResponseStarted" {
			continue
		}
		out = append(out, AuditEvent{
			User: user, Verb: ev.Verb, APIGroup: ev.ObjectRef.APIGroup, Resource: ev.ObjectRef.Resource, Subresource: ev.ObjectRef.Subresource,
			Namespace: ev.ObjectRef.Namespace, Name: ev.ObjectRef.Name, Code: ev.ResponseStatus.Code,
			URI: ev.RequestURI, Stage: ev.Stage, AuditID: ev.AuditID, Received: ev.Received, At: ev.At,
		})
	}
	return out, sc.Err()
}

// AuditRequest is one request of an identity, its stages joined: a watch
// still open has no End.
type AuditRequest struct {
	AuditEvent
	// End is when the request completed; zero while it is still open.
	End time.Time
}

// Open reports whether the request had not completed when the log was read.
func (r AuditRequest) Open() bool { return r.End.IsZero() }

// Lasted is how long the request took, or has lasted until now when it is still
// open.
func (r AuditRequest) Lasted(now time.Time) time.Duration {
	if r.Open() {
		return now.Sub(r.Received)
	}
	return r.End.Sub(r.Received)
}

// AuditRequests returns the requests user made, one per audit ID, in the order
// they were first logged.
func (cp *ControlPlane) AuditRequests(user string) ([]AuditRequest, error) {
	stages, err := cp.AuditStages(user)
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	var out []AuditRequest
	for _, ev := range stages {
		i, seen := index[ev.AuditID]
		if !seen {
			i = len(out)
			index[ev.AuditID] = i
			out = append(out, AuditRequest{AuditEvent: ev})
		}
		if ev.Stage == "ResponseComplete" {
			out[i].AuditEvent.Code = ev.Code
			out[i].End = ev.At
		}
	}
	return out, nil
}
